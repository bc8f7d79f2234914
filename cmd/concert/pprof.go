package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// envPprofAddr, when set, is a private address where the process serves Go's profiler
// (/debug/pprof/), to find out where the time of a busy on-sale goes. Unset by default: never expose it.
const envPprofAddr = "CONCERT_PPROF_ADDR"

// startProfiler serves /debug/pprof on CONCERT_PPROF_ADDR until ctx ends; it does nothing when unset.
func startProfiler(ctx context.Context, log *slog.Logger) {
	addr := os.Getenv(envPprofAddr)
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("Profiler not started", "addr", addr, "error", err)
		return
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("Profiler stopped", "error", err)
		}
	}()
	log.Info("Profiler listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
}
