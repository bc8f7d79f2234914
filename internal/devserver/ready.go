package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// pollInterval is how often Start re-checks a condition it waits for; short, because every check is a local call.
const pollInterval = 50 * time.Millisecond

// waitReady blocks until a client can reach the frontend and use the namespace, then registers the search
// attributes. temporal.Server.Start returns once the services are started, which is not yet the same as serving.
func waitReady(ctx context.Context, addr string, opts Options, logger *slog.Logger) error {
	var c client.Client
	err := poll(ctx, func() error {
		var err error
		c, err = client.DialContext(ctx, client.Options{
			HostPort:  addr,
			Namespace: opts.Namespace,
			Logger:    sdklog.NewStructuredLogger(logger),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: connect to frontend %s: %w", addr, err)
	}
	defer c.Close()

	err = poll(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx,
			&workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: namespace %q not ready: %w", opts.Namespace, err)
	}
	return registerSearchAttributes(ctx, c, opts.Namespace, opts.SearchAttributes)
}

// registerSearchAttributes adds the attributes of want that the namespace lacks, through the operator service,
// and waits until every service can use them. A workflow that upserts an unknown attribute fails its workflow
// task on every retry, so Start must not return before this is done.
func registerSearchAttributes(ctx context.Context, c client.Client, ns string,
	want map[string]enums.IndexedValueType,
) error {
	if len(want) == 0 {
		return nil
	}
	have, err := customSearchAttributes(ctx, c, ns)
	if err != nil {
		return err
	}
	missing, err := missingSearchAttributes(want, have)
	if err != nil || len(missing) == 0 {
		return err
	}

	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        ns,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("devserver: add search attributes %v: %w", slices.Sorted(maps.Keys(missing)), err)
	}

	// Wait until ListSearchAttributes (read from the database) lists them and the frontend accepts a query that
	// names them. With system.forceSearchAttributesCacheRefreshOnRead (see dynamicConfig) every service then
	// resolves them from the database too, so no cache refresh needs waiting for.
	err = poll(ctx, func() error {
		have, err := customSearchAttributes(ctx, c, ns)
		if err != nil {
			return err
		}
		if still, err := missingSearchAttributes(want, have); err != nil || len(still) > 0 {
			return errors.Join(err, fmt.Errorf("not yet listed: %v", slices.Sorted(maps.Keys(still))))
		}
		_, err = c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: ns,
			Query:     isNullQuery(missing),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: search attributes not visible: %w", err)
	}
	return nil
}

// customSearchAttributes lists the namespace's custom search attributes with their types.
func customSearchAttributes(ctx context.Context, c client.Client, ns string,
) (map[string]enums.IndexedValueType, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return nil, fmt.Errorf("devserver: list search attributes: %w", err)
	}
	return resp.GetCustomAttributes(), nil
}

// missingSearchAttributes returns the attributes of want that have does not list. An attribute registered with
// a different type is an error: the server would silently keep the old type (AddSearchAttributes skips names
// that exist), and every upsert of the new type would then fail.
func missingSearchAttributes(want, have map[string]enums.IndexedValueType,
) (map[string]enums.IndexedValueType, error) {
	missing := make(map[string]enums.IndexedValueType)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, ok := have[name]
		switch {
		case !ok:
			missing[name] = want[name]
		case got != want[name]:
			errs = append(errs, fmt.Errorf("devserver: search attribute %q is registered as %v, want %v",
				name, got, want[name]))
		}
	}
	return missing, errors.Join(errs...)
}

// isNullQuery builds a visibility query that names every attribute, so the frontend rejects it until it knows
// them all.
func isNullQuery(attrs map[string]enums.IndexedValueType) string {
	terms := make([]string, 0, len(attrs))
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		terms = append(terms, fmt.Sprintf("`%s` IS NULL", name))
	}
	return strings.Join(terms, " OR ")
}

// poll calls f until it succeeds or ctx ends, and then returns f's last error with the context's, so a timeout
// says what was being waited for.
func poll(ctx context.Context, f func() error) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
}
