package derive

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opkit/opkit/rollup/derive/derivetest"
)

func TestTraversal(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	l1 := derivetest.NewL1(0, 990)
	b1 := l1.Mine(2, nil)
	tr := newL1Traversal(cfg, l1, quietLog())
	tr.reset(l1.Ref(0), cfg.Genesis.SystemConfig)

	if ref, err := tr.NextL1Block(ctx); err != nil || ref != l1.Ref(0) {
		t.Fatalf("first block: %v %v", ref, err)
	}
	if _, err := tr.NextL1Block(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("block handed out twice: %v", err)
	}
	if err := tr.advance(ctx); err != nil || tr.Origin() != b1 {
		t.Fatalf("advance: %v, origin %v", err, tr.Origin())
	}
	if err := tr.advance(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("advance past the head: %v, want io.EOF", err)
	}

	l1.FailNext(1, errors.New("connection refused"))
	l1.Mine(2, nil)
	if err := tr.advance(ctx); !errors.Is(err, ErrTemporary) {
		t.Fatalf("advance with a failing L1: %v, want temporary", err)
	}

	tr.limit = b1.Number
	if err := tr.advance(ctx); !errors.Is(err, io.EOF) || tr.Origin() != b1 {
		t.Fatalf("advance past the limit: %v at %v", err, tr.Origin())
	}
	tr.limit = NoL1Limit

	// The chain reorgs under the origin: the next block does not build on it.
	l1.Rewind(0)
	l1.Mine(3, nil, 0xee)
	l1.Mine(3, nil, 0xee)
	if err := tr.advance(ctx); !errors.Is(err, ErrReset) {
		t.Fatalf("advance over a reorg: %v, want reset", err)
	}
}
