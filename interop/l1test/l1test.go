package l1test

import (
	"errors"
	"testing"
	"time"

	"github.com/opkit/opkit/devnet"
)

// ErrSealTimeout says the dev L1 did not seal a block within the deadline.
var ErrSealTimeout = errors.New("dev L1 did not seal a block in time")

// Start starts a dev L1 with its first block sealed; it is closed when the test ends.
func Start(tb testing.TB) *devnet.L1 {
	tb.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		l1, err := devnet.StartL1(devnet.L1Config{})
		if err != nil {
			tb.Fatal(err)
		}
		if SealWithin(l1, 10*time.Second) == nil {
			tb.Cleanup(func() { _ = l1.Close() })
			return l1
		}
		// Not closed: closing would wait for the stuck seal.
		tb.Logf("dev L1 did not seal its first block in 10s, starting another")
	}
	tb.Fatal("dev L1 never sealed a block")
	return nil
}

// SealWithin seals one block, or gives up with ErrSealTimeout after d.
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
