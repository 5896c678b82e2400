package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestInteropDevnetFlagErrorsNameTheFlag(t *testing.T) {
	for _, args := range [][]string{
		{"opkit", "devnet", "--chains", "901,abc"},
		{"opkit", "devnet", "--chains", "901,901"},
		{"opkit", "devnet", "--chains", "900"}, // the L1's chain ID
	} {
		app := newApp()
		app.Writer = &bytes.Buffer{}
		if err := app.Run(args); err == nil || !strings.Contains(err.Error(), "--chains") {
			t.Errorf("%v: error %v does not name --chains", args[2:], err)
		}
	}
	app := newApp()
	app.Writer = &bytes.Buffer{}
	err := app.Run([]string{"opkit", "devnet", "--chains", "901,902", "--supervisor=false", "--interop.mempool-filtering"})
	if err == nil || !strings.Contains(err.Error(), "--interop.mempool-filtering") {
		t.Errorf("mempool filtering without the supervisor: error %v does not name the flag", err)
	}
}

// `opkit devnet --chains 901,902 --supervisor=false` prints each node's managed endpoint
// and JWT secret for an external supervisor, and stops cleanly on cancel.
func TestInteropDevnetCommandPrintsManagedEndpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := newApp()
	var out safeBuffer
	app.Writer = &out
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"opkit", "--log.level", "error", "devnet", "--chains", "901,902", "--supervisor=false",
			"--datadir", t.TempDir(), "--l1.block-time", "1s", "--l2.block-time", "1"})
	}()
	deadline := time.Now().Add(90 * time.Second)
	for strings.Count(out.String(), "managed endpoint ws://") < 2 {
		select {
		case err := <-done:
			t.Fatalf("devnet exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no managed endpoints printed:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"chain 901:", "chain 902:", "JWT secret 0x", "dependency set:", "no supervisor"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devnet stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devnet did not stop")
	}
}
