package devserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ticketing/concert/internal/devserver"
)

// ExampleStart shows how `concert dev` runs the stack: defaults, a data directory so workflows survive a
// restart, the search attributes the workflows upsert, then a client on the returned address.
func ExampleStart() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	opts := devserver.DefaultOptions()
	opts.DataDir = ".concert/temporal"
	opts.SearchAttributes = map[string]enums.IndexedValueType{
		"ConcertCode":   enums.INDEXED_VALUE_TYPE_KEYWORD,
		"BookingStatus": enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		slog.Error("start temporal dev server", "error", err)
		return
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			slog.Error("stop temporal dev server", "error", err)
		}
	}()
	fmt.Println("Temporal UI:", srv.UIAddress())

	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	if err != nil {
		slog.Error("dial temporal", "error", err)
		return
	}
	defer c.Close()
	// ... start workers and the HTTP API with c, then wait:
	<-ctx.Done()
}
