package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	rpprof "runtime/pprof"
	"strconv"
	"time"
)

// pprofConfig is op-batcher's --pprof.* group: a /debug/pprof server, and a profile of
// one type written to a file (a CPU profile over the process's life, or the other
// profiles at exit), so a benchmark can profile the whole run of a batcher process.
type pprofConfig struct {
	enabled  bool
	addr     string
	port     int
	typ      string // cpu, heap, allocs, goroutine, block, mutex, threadcreate; empty: none
	path     string // a file, or a directory for <type>.prof
	started  bool
	cpuFile  *os.File
	srv      *http.Server
	srvDone  chan struct{}
	listener net.Listener
}

var pprofTypes = map[string]bool{"cpu": true, "heap": true, "allocs": true, "goroutine": true, "block": true, "mutex": true, "threadcreate": true}

func (p *pprofConfig) check() error {
	if p.typ != "" && !pprofTypes[p.typ] {
		return fmt.Errorf("--pprof.type: %q is not one of cpu, heap, allocs, goroutine, block, mutex, threadcreate", p.typ)
	}
	if p.typ != "" && p.path == "" {
		return errors.New("--pprof.path: required with --pprof.type")
	}
	if p.enabled && (p.port < 0 || p.port > 65535) {
		return fmt.Errorf("--pprof.port: %d is not a port", p.port)
	}
	return nil
}

func (p *pprofConfig) file() string {
	if st, err := os.Stat(p.path); err == nil && st.IsDir() {
		return filepath.Join(p.path, p.typ+".prof")
	}
	return p.path
}

// start opens the server and, for a CPU profile, starts recording.
func (p *pprofConfig) start(log *slog.Logger) error {
	if p.typ == "cpu" {
		f, err := os.Create(p.file())
		if err != nil {
			return fmt.Errorf("--pprof.path: %w", err)
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("--pprof.type cpu: %w", err)
		}
		p.cpuFile = f
	}
	if p.typ == "block" {
		runtime.SetBlockProfileRate(1)
	}
	if p.typ == "mutex" {
		runtime.SetMutexProfileFraction(1)
	}
	p.started = true
	if !p.enabled {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(p.addr, strconv.Itoa(p.port)))
	if err != nil {
		p.stop(log)
		return fmt.Errorf("--pprof.port: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: /debug/pprof/profile streams for as many seconds as asked.
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	p.listener, p.srvDone = ln, make(chan struct{})
	go func() {
		defer close(p.srvDone)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof server listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}

// stop ends the CPU profile or writes the profile of the other types, and stops the
// server.
func (p *pprofConfig) stop(log *slog.Logger) {
	if !p.started {
		return
	}
	p.started = false
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = p.srv.Shutdown(ctx)
		cancel()
		<-p.srvDone
	}
	switch {
	case p.cpuFile != nil:
		rpprof.StopCPUProfile()
		if err := p.cpuFile.Close(); err != nil {
			log.Error("writing the CPU profile failed", "err", err)
		}
	case p.typ != "":
		if err := writeProfile(p.typ, p.file()); err != nil {
			log.Error("writing the profile failed", "type", p.typ, "err", err)
		}
	}
}

func writeProfile(typ, path string) error {
	prof := rpprof.Lookup(typ)
	if prof == nil {
		return fmt.Errorf("no %s profile", typ)
	}
	if typ == "heap" {
		runtime.GC()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := prof.WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
