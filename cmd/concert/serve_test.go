package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/api"
	"github.com/ticketing/concert/internal/contract"
)

// TestSlowClientsAreCutOff proves the server's timeouts: a client that dribbles its headers (slowloris) or
// its body is disconnected, while a normal request on the same server is served.
func TestSlowClientsAreCutOff(t *testing.T) {
	saved := serverTimeouts
	serverTimeouts.readHeader, serverTimeouts.read = 300*time.Millisecond, 600*time.Millisecond
	t.Cleanup(func() { serverTimeouts = saved })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	go func() { done <- serve(ctx, ln, h, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() { cancel(); <-done })

	// closedWithin reports whether the server closes the connection (whatever it answers first) before d.
	closedWithin := func(send string, d time.Duration) bool {
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, send)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(d)))
		_, err = io.ReadAll(conn) // returns at EOF, i.e. when the server hangs up
		return err == nil
	}
	assert.True(t, closedWithin("GET / HTTP/1.1\r\nHost: x\r\n", 3*time.Second), "unfinished headers are cut off")
	assert.True(t, closedWithin("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 3*time.Second), "an unfinished body is cut off")

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestShutdownLetsInFlightRequestsFinish proves the graceful shutdown on SIGTERM (a cancelled context): a
// request in flight when shutdown begins is answered, new connections are refused, and serve returns.
func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond) // a reserve waiting on its workflow, say
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			answer <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- string(b)
	}()
	<-started
	cancel() // SIGTERM
	assert.Equal(t, "done", <-answer, "the in-flight request is answered")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(shutdownTimeout):
		t.Fatal("serve did not return after shutdown")
	}
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	assert.Error(t, err, "the listener is closed")
}

// TestOversizedHeadersAreAnswered431AsDocumented proves the 4xx every operation may get and the operations
// endpoints document: header fields over 32 KiB are refused by the server before any route runs, with 431.
func TestOversizedHeadersAreAnswered431AsDocumented(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ran := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true })
	go func() { done <- serve(ctx, ln, h, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() { cancel(); <-done })
	checker, err := contract.New(api.OpenAPI())
	require.NoError(t, err)

	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+path, nil)
		require.NoError(t, err)
		req.Header.Set("X-Padding", strings.Repeat("x", 40<<10))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, path)
		assert.NoError(t, checker.Check(t.Context(), contract.Exchange{
			Request: req, Status: resp.StatusCode, Header: resp.Header, Body: raw,
		}), path)
	}
	assert.False(t, ran, "no handler ran")
}
