// Command concert runs the concert booking service.
//
//	concert dev      the whole stack in one process: embedded Temporal (with Web UI), worker and API
//	concert api      the HTTP API, against an external Temporal cluster and PostgreSQL
//	concert worker   the Temporal worker that runs the booking workflows and activities
//	concert migrate  apply the database migrations
//	concert admin    support and operator commands (list and cancel bookings, pause admission)
//
// Configuration comes from environment variables (see config.go and the README); flags mirror them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "concert:", err)
		os.Exit(1)
	}
}

const usage = `usage: concert <command> [flags]

commands:
  dev      run the whole stack in one process (embedded Temporal with Web UI, worker, API)
  api      run the HTTP API against TEMPORAL_ADDRESS and DATABASE_URL
  worker   run the Temporal worker against TEMPORAL_ADDRESS and DATABASE_URL
  migrate  apply database migrations to DATABASE_URL
  admin    support and operator commands against the API (bookings list|cancel, admission)
  check    verify the money, seat and session invariants of DATABASE_URL; exit 1 if one is broken
  loadtest drive an on-sale against a running stack and report throughput, latency and invariants

Run "concert <command> -h" for the flags of a command.
`

// run executes one subcommand until it finishes or ctx is cancelled (SIGINT/SIGTERM).
func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(out, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	if cmd == "dev" || cmd == "api" || cmd == "worker" {
		startProfiler(ctx, slog.Default())
	}
	switch cmd {
	case "dev":
		cfg, err := parseConfig(cmd, rest, true, true)
		if err != nil {
			return err
		}
		return runDev(ctx, cfg, out)
	case "api":
		cfg, err := parseConfig(cmd, rest, false, true)
		if err != nil {
			return err
		}
		return runAPI(ctx, cfg)
	case "worker":
		cfg, err := parseConfig(cmd, rest, false, false)
		if err != nil {
			return err
		}
		return runWorker(ctx, cfg)
	case "migrate":
		cfg, err := parseConfig(cmd, rest, false, false)
		if err != nil {
			return err
		}
		return runMigrate(ctx, cfg, out)
	case "admin":
		return runAdmin(ctx, rest, out)
	case "check":
		return runCheck(ctx, rest, out)
	case "loadtest":
		return runLoadtest(ctx, rest, out, os.Stderr)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprint(out, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
