package batcher

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/opkit/opkit/batcher/channels"
)

// A blob transaction whose send failed goes out again with the sidecar built the first
// time; other frames, or a change of sidecar version at the cell-proof time, build a new
// one.
func TestSidecarIsReusedForTheSameFrames(t *testing.T) {
	// Before the cell-proof time (version 0: one blob proof a blob, cheap to build).
	b := &Batcher{cfg: Config{MaxPendingTx: 1, CellProofTime: uint64(time.Now().Add(time.Hour).Unix())},
		codec: DefaultCodec(), met: newMetrics(prometheus.NewRegistry())}
	td := channels.TxData{ID: "c:0+2", DA: channels.Blobs, Frames: []channels.Frame{{Bytes: []byte{1, 2, 3}}, {Number: 1, IsLast: true, Bytes: []byte{4, 5}}}}
	first, err := b.sidecar(td)
	if err != nil {
		t.Fatal(err)
	}
	if first.Version != types.BlobSidecarVersion0 || len(first.Proofs) != 2 {
		t.Fatalf("before the cell-proof time: version %d with %d proofs", first.Version, len(first.Proofs))
	}
	again, err := b.sidecar(td)
	if err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := b.met.sidecarReuses.Write(&m); err != nil {
		t.Fatal(err)
	}
	if again != first || m.GetCounter().GetValue() != 1 {
		t.Fatalf("the resend built a new sidecar (reuses counted %v)", m.GetCounter().GetValue())
	}
	// The same ID with other frames (a failed-over channel framed anew) is proved anew.
	other := td
	other.Frames = []channels.Frame{{Bytes: []byte{9}}}
	if sc, err := b.sidecar(other); err != nil || sc == first {
		t.Fatalf("other frames got the cached sidecar (%v)", err)
	}
	// Past the cell-proof time the same frames need a version-1 sidecar.
	b.cfg.CellProofTime = 0
	sc, err := b.sidecar(other)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Version != types.BlobSidecarVersion1 || len(sc.Proofs) != 128 {
		t.Fatalf("after the cell-proof time: version %d with %d proofs", sc.Version, len(sc.Proofs))
	}
	b.forgetSidecar(other.ID)
	if len(b.scCache) != 0 {
		t.Fatalf("%d sidecars cached after the confirmation", len(b.scCache))
	}
}
