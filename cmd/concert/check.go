package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ticketing/concert/db"
)

// defaultHoldGrace is how long past its deadline `concert check` lets a hold or an admission wait for its
// session workflow to end it before calling it stale. Workflows end them within seconds when workers run.
const defaultHoldGrace = time.Minute

// errInvariantsBroken is what `concert check` returns after reporting violations, so the process exits 1.
var errInvariantsBroken = errors.New("check: invariants are broken (see the report)")

// runCheck is `concert check`: it verifies the store's invariants (money conserved, every sold seat paid for
// once, no stale hold) on the database at DATABASE_URL and fails when one is broken. It opens the database
// and never migrates or writes it, so it can be pointed at any database, production included.
func runCheck(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("concert check", flag.ContinueOnError)
	dsn := fs.String("database-url", env(envDatabaseURL, defaultDatabaseURL), "PostgreSQL URL ("+envDatabaseURL+")")
	grace := fs.Duration("hold-grace", defaultHoldGrace, "how long past its deadline a hold or admission may wait for its workflow to end it")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *grace < 0 {
		return fmt.Errorf("--hold-grace must not be negative, got %s", *grace)
	}
	store, err := db.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	ok, err := checkDatabase(ctx, store, *grace, out, *asJSON)
	if err != nil {
		return err
	}
	if !ok {
		return errInvariantsBroken
	}
	return nil
}

// checkDatabase checks the invariants of the database behind store, writes the report to out (text, or
// JSON when asJSON) and says whether they all hold. An error means the check could not run: the database
// is unreachable, or its schema is missing or behind this binary's (it is never migrated from here). The
// load generator and the chaos test call it after a run.
func checkDatabase(ctx context.Context, store *db.Store, grace time.Duration, out io.Writer, asJSON bool) (ok bool, err error) {
	pending, err := store.PendingMigrations(ctx)
	if err != nil {
		return false, err
	}
	if len(pending) > 0 {
		return false, fmt.Errorf("check: the database schema is missing or out of date (not applied: %s); "+
			"run `concert migrate` against it first (check never changes a database)", strings.Join(pending, ", "))
	}
	violations, err := store.CheckInvariants(ctx, grace)
	if err != nil {
		return false, err
	}
	sum, err := store.InvariantSummary(ctx)
	if err != nil {
		return false, err
	}
	ok = len(violations) == 0
	if asJSON {
		return ok, writeCheckJSON(out, ok, grace, sum, violations)
	}
	return ok, writeCheckText(out, ok, grace, sum, violations)
}

// checkReport is the --json form of the report.
type checkReport struct {
	OK         bool             `json:"ok"`
	HoldGrace  string           `json:"holdGrace"`
	Summary    checkSummary     `json:"summary"`
	Violations []checkViolation `json:"violations"`
}

// checkSummary is db.InvariantSummary as the JSON report spells it.
type checkSummary struct {
	Users          int64 `json:"users"`
	Sessions       int64 `json:"sessions"`
	SeatsSold      int64 `json:"seatsSold"`
	SeatsHeld      int64 `json:"seatsHeld"`
	Payments       int64 `json:"payments"`
	Paid           int64 `json:"paid"`
	LedgerRows     int64 `json:"ledgerRows"`
	LedgerSum      int64 `json:"ledgerSum"`
	Balances       int64 `json:"balances"`
	LedgerBalanced bool  `json:"ledgerBalanced"`
}

// checkViolation is db.Violation as the JSON report spells it.
type checkViolation struct {
	Invariant string `json:"invariant"`
	Subject   string `json:"subject"`
	Detail    string `json:"detail"`
}

// writeCheckJSON writes the report as one indented JSON object; violations is [] rather than null when
// there are none, so a script can always range over it.
func writeCheckJSON(out io.Writer, ok bool, grace time.Duration, sum db.InvariantSummary, violations []db.Violation) error {
	r := checkReport{
		OK: ok, HoldGrace: grace.String(),
		Summary: checkSummary{
			Users: sum.Users, Sessions: sum.Sessions, SeatsSold: sum.SeatsSold, SeatsHeld: sum.SeatsHeld,
			Payments: sum.Payments, Paid: sum.Paid, LedgerRows: sum.LedgerRows, LedgerSum: sum.LedgerSum,
			Balances: sum.Balances, LedgerBalanced: sum.LedgerBalanced(),
		},
		Violations: make([]checkViolation, 0, len(violations)),
	}
	for _, v := range violations {
		r.Violations = append(r.Violations, checkViolation{Invariant: v.Invariant, Subject: v.Subject, Detail: v.Detail})
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeCheckText writes the report for people: one OK line, or a FAIL header and one FAIL line per
// violation ("FAIL balance-equals-ledger user …: balance 100 != ledger sum 90").
func writeCheckText(out io.Writer, ok bool, grace time.Duration, sum db.InvariantSummary, violations []db.Violation) error {
	ledger := fmt.Sprintf("ledger balanced (%d won in %s)", sum.LedgerSum, plural(sum.LedgerRows, "row"))
	if !sum.LedgerBalanced() {
		ledger = fmt.Sprintf("ledger off by %d (balances %d, ledger sum %d)", sum.Balances-sum.LedgerSum, sum.Balances, sum.LedgerSum)
	}
	figures := fmt.Sprintf("%s, %s sold, %s, %s; %s held, %s; hold grace %s",
		plural(sum.Users, "user"), plural(sum.SeatsSold, "seat"), plural(sum.Payments, "payment"), ledger,
		plural(sum.SeatsHeld, "seat"), plural(sum.Sessions, "session"), grace)
	var b strings.Builder
	if ok {
		fmt.Fprintf(&b, "OK: %s\n", figures)
	} else {
		fmt.Fprintf(&b, "FAIL: %s in %s\n", plural(int64(len(violations)), "invariant violation"), figures)
		for _, v := range violations {
			fmt.Fprintf(&b, "FAIL %s\n", v)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// plural writes a count with its noun, in the plural unless the count is one.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
