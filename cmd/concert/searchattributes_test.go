package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/ticketing/concert/internal/devserver"
	"github.com/ticketing/concert/workflows"
)

// TestWorkerRegistersMissingSearchAttributesOnce proves that a worker starting against a namespace without
// the custom search attributes registers them, that a second start changes nothing, and that an attribute
// registered with the wrong type stops the worker with a clear error.
func TestWorkerRegistersMissingSearchAttributesOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: devserver.NoUI, Logger: log,
		SearchAttributes: map[string]enumspb.IndexedValueType{"SeatNumber": enumspb.INDEXED_VALUE_TYPE_KEYWORD}})
	require.NoError(t, err)
	defer srv.Stop()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer c.Close()

	err = ensureSearchAttributes(ctx, c, srv.Namespace(), log)
	require.ErrorContains(t, err, "SeatNumber is registered as", "a wrongly typed attribute is reported")

	srv2, err := devserver.Start(ctx, devserver.Options{UIPort: devserver.NoUI, Logger: log})
	require.NoError(t, err)
	defer srv2.Stop()
	c2, err := client.DialContext(ctx, client.Options{HostPort: srv2.FrontendAddress(), Namespace: srv2.Namespace()})
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, ensureSearchAttributes(ctx, c2, srv2.Namespace(), log))
	have, err := c2.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: srv2.Namespace()})
	require.NoError(t, err)
	for name, typ := range workflows.SearchAttributes() {
		require.Equal(t, typ, have.GetCustomAttributes()[name], name)
	}
	require.NoError(t, ensureSearchAttributes(ctx, c2, srv2.Namespace(), log), "registering again is harmless")
}
