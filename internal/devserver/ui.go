package devserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// startUI serves the Temporal Web UI (the ui-server module's embedded assets and its HTTP API, which it forwards
// to the frontend over gRPC) and waits until it answers, so UIAddress can be opened as soon as Start returns.
//
// ui-server's Start blocks and calls its logger's Fatal (exiting the process) if it cannot bind, and offers no
// way to hand it a listener; choosePorts checked the port a moment earlier, which is the best available guard.
func (s *Server) startUI(ctx context.Context, opts Options) error {
	ui := uiserver.NewServer(server_options.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost(opts.IP),
		Port:                s.ports.ui,
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    opts.Namespace,
		// Plain HTTP on loopback: a Secure cookie would never be sent back, breaking CSRF-protected actions.
		CORS: uiconfig.CORS{CookieInsecure: true},
		// The news feed is fetched from the internet; a dev stack must work offline.
		DisableNewsFetch: true,
		HideLogs:         true,
	}))
	s.ui = ui
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = ui.Start() // returns nil once Stop closes it; a bind failure exits inside ui-server
	}()

	host := net.JoinHostPort(dialHost(opts.IP), strconv.Itoa(s.ports.ui))
	s.uiURL = "http://" + host
	err := poll(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiURL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close() // only the status matters
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("devserver: web UI on %s not ready: %w", host, err)
	}
	return nil
}

// uiHost formats ip for ui-server, which builds its listen address as host + ":" + port and so needs an IPv6
// address in brackets.
func uiHost(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}
