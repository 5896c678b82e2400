package l1test

import (
	"errors"
	"testing"
	"time"

	"github.com/opkit/opkit/devnet"
)

// ErrSealTimeout is returned by SealWithin when the block was not sealed in time.
var ErrSealTimeout = errors.New("dev L1 did not seal a block in time")

// Start starts a dev L1, seals its first block and closes it when the test ends.
func Start(tb testing.TB) *devnet.L1 {
	tb.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l1.Close() })
	if err := SealWithin(l1, 30*time.Second); err != nil {
		tb.Fatalf("first block of the dev L1: %v", err)
	}
	return l1
}

// SealWithin seals one block, giving up after d.
func SealWithin(l1 *devnet.L1, d time.Duration) error {
	done := make(chan error, 1)
	go func() {
		_, err := l1.Mine()
		done <- err
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ErrSealTimeout
	}
}
