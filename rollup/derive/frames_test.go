package derive

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

func frameNames(fs []batch.Frame) string {
	s := ""
	for _, f := range fs {
		last := ""
		if f.IsLast {
			last = "!"
		}
		s += fmt.Sprintf("%c%d%s ", 'A'+f.ID[0], f.Number, last)
	}
	return s
}

func TestPruneFrames(t *testing.T) {
	A, B, C := byte(0), byte(1), byte(2)
	for _, c := range []struct {
		name      string
		in        []batch.Frame
		kept      string
		dropCount int
	}{
		{"one complete channel", []batch.Frame{fr(A, 0, false), fr(A, 1, false), fr(A, 2, true)}, "A0 A1 A2! ", 0},
		{"two complete channels", []batch.Frame{fr(A, 0, true), fr(B, 0, false), fr(B, 1, true)}, "A0! B0 B1! ", 0},
		{"frame after last of the same channel", []batch.Frame{fr(A, 0, true), fr(A, 1, false)}, "A0! ", 1},
		{"gap in the same channel", []batch.Frame{fr(A, 0, false), fr(A, 2, true)}, "A0 ", 1},
		{"repeat in the same channel", []batch.Frame{fr(A, 0, false), fr(A, 0, false), fr(A, 1, true)}, "A0 A1! ", 1},
		{"new channel cuts an open one", []batch.Frame{fr(A, 0, false), fr(A, 1, false), fr(B, 0, true)}, "B0! ", 2},
		{"new channel not at frame 0", []batch.Frame{fr(A, 0, true), fr(B, 1, true)}, "A0! ", 1},
		{"open channel then a foreign middle frame", []batch.Frame{fr(A, 0, false), fr(B, 3, false), fr(A, 1, true)}, "A0 A1! ", 1},
		{"cut channel then a complete one", []batch.Frame{fr(A, 0, true), fr(B, 0, false), fr(C, 0, true)}, "A0! C0! ", 1},
		{"single open frame is kept", []batch.Frame{fr(A, 0, false)}, "A0 ", 0},
		{"leading middle frame is kept for the assembler", []batch.Frame{fr(A, 3, false), fr(A, 4, true)}, "A3 A4! ", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			drops := 0
			got := pruneFrames(c.in, func(batch.Frame) { drops++ })
			if frameNames(got) != c.kept || drops != c.dropCount {
				t.Fatalf("kept %q (%d dropped), want %q (%d)", frameNames(got), drops, c.kept, c.dropCount)
			}
		})
	}
}

func txData(t *testing.T, frames ...batch.Frame) []byte {
	t.Helper()
	d, err := batch.TxData(frames...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFrameQueue(t *testing.T) {
	ctx := context.Background()
	m := &derivetest.Metrics{}
	good := txData(t, fr(0, 0, false, 1), fr(0, 1, true, 2))
	malformed := append(txData(t, fr(1, 0, true, 3)), 0xff) // a trailing byte spoils the whole item
	src := &dataList{items: [][]byte{{}, {1, 2, 3}, malformed, good, txData(t, fr(2, 0, false), fr(3, 0, true))}}
	q := newFrameQueue(src, testConfig(), quietLog(), m)
	var got []batch.Frame
	for {
		f, err := q.NextFrame(ctx)
		if errors.Is(err, ErrNotEnoughData) {
			continue
		}
		if err != nil {
			break
		}
		got = append(got, f)
	}
	if frameNames(got) != "A0 A1! D0! " {
		t.Fatalf("frames %q", frameNames(got))
	}
	if m.Count("data/"+DropDataVersion) != 2 || m.Count("data/"+DropDataMalformed) != 1 || m.Count("frame/"+DropFramePruned) != 1 {
		t.Fatalf("counts %v", m.Counts())
	}
}
