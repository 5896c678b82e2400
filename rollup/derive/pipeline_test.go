package derive

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
)

func TestErrorClassesWrap(t *testing.T) {
	cause := errors.New("cause")
	for _, c := range []struct {
		err   error
		class error
	}{{NewResetError(cause), ErrReset}, {NewTemporaryError(cause), ErrTemporary}, {NewCriticalError(cause), ErrCritical}} {
		if !errors.Is(c.err, c.class) || !errors.Is(c.err, cause) {
			t.Errorf("%v does not wrap both its class and its cause", c.err)
		}
	}
}

func TestScriptedReplaysThenIdles(t *testing.T) {
	ctx := context.Background()
	p := NewScripted(nil, ErrNotEnoughData)
	p.Push(ErrTemporary)
	for i, want := range []error{nil, ErrNotEnoughData, ErrTemporary, io.EOF, io.EOF} {
		if got := p.Step(ctx); !errors.Is(got, want) && got != want {
			t.Fatalf("step %d: %v, want %v", i, got, want)
		}
	}
	if p.Steps() != 5 || p.Remaining() != 0 {
		t.Fatalf("steps %d remaining %d", p.Steps(), p.Remaining())
	}
	p.Reset(ctx)
	p.OnL1Finalized(ctx, eth.L1BlockRef{Number: 3})
	if p.Resets() != 1 || len(p.Finalized()) != 1 {
		t.Fatal("calls not recorded")
	}
}

func TestIdlePipeline(t *testing.T) {
	var p Idle
	if err := p.Step(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("step: %v", err)
	}
	p.Reset(context.Background())
	if p.Resets() != 1 {
		t.Fatal("resets not counted")
	}
}

// An Idle pipeline derived nothing, so it must not report an L1 block as read, whatever
// happened: a batcher would take that for its channels being dropped.
func TestIdleOriginStaysZero(t *testing.T) {
	var p Idle
	ctx := context.Background()
	p.Step(ctx)
	p.Reset(ctx)
	p.OnL1Finalized(ctx, eth.L1BlockRef{Number: 9, Hash: common.Hash{9}})
	if got := p.Origin(); !got.IsZero() {
		t.Fatalf("origin %v, want zero", got)
	}
}
