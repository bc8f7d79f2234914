package devserver

import (
	"errors"
	"log/slog"
	"net"
	"strconv"

	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

// clusterName names the single cluster. It is persisted in the database and every namespace refers to it, so it
// must never change for an existing DataDir.
const clusterName = "active"

// dynamicConfig holds the few server settings a single-node dev stack needs beyond the defaults. Update,
// Update-with-Start and eager workflow start need nothing here: in server v1.32.1
// frontend.enableUpdateWorkflowExecution and frontend.enableUpdateWorkflowExecutionAsyncAccepted default to true,
// ExecuteMultiOperation (Update-with-Start) has no flag, and system.enableEagerWorkflowStart defaults to true.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Resolve search attributes from the database on every use, in every service, instead of from caches
		// refreshed every few seconds: an attribute registered by Start (or by a test) can then be upserted by
		// the very next workflow task. Without it, an upsert right after registration can fail the workflow
		// task. Cheap at dev-server load; the server's documentation warns against it in production.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// Visibility calls (list, count) are limited to 10 per second per namespace by default; the Web UI's
		// refreshing lists and the application's own list queries share that budget, and whoever goes past it
		// gets ResourceExhausted. 100 is what the Temporal CLI's dev server uses.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// The task-queue and history scanners clean up after long-lived clusters (expired task queue rows,
		// orphaned history branches); a dev database needs neither. The server never stops their SDK workers
		// (a TODO in service/worker/scanner), so each Start/Stop cycle would leak them polling a dead frontend.
		dynamicconfig.TaskQueueScannerEnabled.Key(): false,
		dynamicconfig.HistoryScannerEnabled.Key():   false,
	}
}

// newTemporalServer builds (but does not start) the four Temporal services with static membership: every service
// address is known up front, so there is no ringpop gossip and no membership port to collide with another stack.
func newTemporalServer(opts Options, p ports, db *config.SQL, logger *slog.Logger) (temporal.Server, error) {
	frontend := net.JoinHostPort(dialHost(opts.IP), strconv.Itoa(p.frontend))
	internal := func(port int) string { return net.JoinHostPort(internalIP, strconv.Itoa(port)) }

	const store = "sqlite"
	cfg := &config.Config{
		Persistence: config.Persistence{
			DefaultStore:     store,
			VisibilityStore:  store,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{store: {SQL: db}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			string(primitives.FrontendService): {RPC: config.RPC{GRPCPort: p.frontend, BindOnIP: opts.IP}},
			string(primitives.HistoryService):  {RPC: config.RPC{GRPCPort: p.history, BindOnIP: internalIP}},
			string(primitives.MatchingService): {RPC: config.RPC{GRPCPort: p.matching, BindOnIP: internalIP}},
			string(primitives.WorkerService):   {RPC: config.RPC{GRPCPort: p.worker, BindOnIP: internalIP}},
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
			},
		},
		// The worker service (system workflows such as namespace deletion) dials the frontend here.
		PublicClient: config.PublicClient{HostPort: frontend},
	}
	// Global.Metrics and Global.PProf stay empty on purpose: no metrics or pprof listener, fewer ports.

	return temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(frontend),
			primitives.HistoryService:  static.SingleLocalHost(internal(p.history)),
			primitives.MatchingService: static.SingleLocalHost(internal(p.matching)),
			primitives.WorkerService:   static.SingleLocalHost(internal(p.worker)),
		}),
		temporal.WithLogger(serverLogger{l: logger}),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	)
}

// catchFatal runs f and turns a fatal server log (which serverLogger raises as a panic instead of exiting the
// process) into an error, so a misconfiguration fails Start instead of killing `concert dev` or a test binary.
// Fatal logs from the server's own goroutines cannot be caught; the port checks in choosePorts exist so that the
// common cause (a port in use) is reported before the server starts.
func catchFatal(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			var fatal *fatalLogError
			if e, ok := r.(error); ok && errors.As(e, &fatal) {
				err = fatal
				return
			}
			panic(r)
		}
	}()
	return f()
}
