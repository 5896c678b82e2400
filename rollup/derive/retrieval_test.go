package derive

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/rollup/derive/derivetest"
)

func TestRetrieval(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	l1 := derivetest.NewL1(0, 990)
	b1 := l1.Mine(2, nil)
	data := derivetest.NewData()
	other := common.Address{0xbb}
	data.Add(l1.Ref(0).Hash, testBatcher, []byte{0, 1})
	data.Add(b1.Hash, other, []byte{0, 2})
	data.Add(b1.Hash, testBatcher, []byte{0, 3})
	data.Add(b1.Hash, testBatcher, []byte{0, 4})

	tr := newL1Traversal(cfg, l1, quietLog())
	tr.reset(l1.Ref(0), cfg.Genesis.SystemConfig)
	r := newL1Retrieval(tr, data)

	next := func() []byte {
		t.Helper()
		d, err := r.NextData(ctx)
		if err != nil {
			t.Fatalf("next data: %v", err)
		}
		return d
	}
	if d := next(); d[1] != 1 {
		t.Fatalf("base block data %x", d)
	}
	if _, err := r.NextData(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("end of block: %v", err)
	}
	if err := tr.advance(ctx); err != nil {
		t.Fatal(err)
	}
	// A failed fetch is retried for the same block, not skipped.
	data.FailNext(1, errors.New("blob fetch failed"))
	if _, err := r.NextData(ctx); !errors.Is(err, ErrTemporary) {
		t.Fatalf("failing source: %v, want temporary", err)
	}
	if d := next(); d[1] != 3 {
		t.Fatalf("first item %x, want the batcher's", d)
	}
	if d := next(); d[1] != 4 {
		t.Fatalf("second item %x", d)
	}
	if _, err := r.NextData(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("end of block: %v", err)
	}
	for _, a := range data.Asked() {
		if a != testBatcher {
			t.Fatalf("asked for batcher %s", a)
		}
	}

	// A classified source error keeps its class.
	l1.Mine(2, nil)
	if err := tr.advance(ctx); err != nil {
		t.Fatal(err)
	}
	data.FailNext(1, NewResetError(errors.New("blobs missing")))
	if _, err := r.NextData(ctx); !errors.Is(err, ErrReset) || errors.Is(err, ErrTemporary) {
		t.Fatalf("reset from source: %v", err)
	}
}
