package derive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

func TestChannelAssembler(t *testing.T) {
	big := bytes.Repeat([]byte{7}, MaxRLPBytesPerChannelFjord/2)
	for _, c := range []struct {
		name   string
		frames []batch.Frame
		want   [][]byte // bodies emitted
		counts map[string]int
	}{
		{"complete channel", []batch.Frame{fr(0, 0, false, 1), fr(0, 1, false, 2), fr(0, 2, true, 3)}, [][]byte{{1, 2, 3}}, nil},
		{"frame without a channel", []batch.Frame{fr(0, 1, true, 1)}, nil, map[string]int{"frame/" + DropFrameNoChannel: 1}},
		{"frame of another channel", []batch.Frame{fr(0, 0, false, 1), fr(1, 1, false, 9), fr(0, 1, true, 2)}, [][]byte{{1, 2}},
			map[string]int{"frame/" + DropFrameOtherID: 1}},
		{"duplicate frame", []batch.Frame{fr(0, 0, false, 1), fr(0, 1, false, 2), fr(0, 1, false, 9), fr(0, 2, true, 3)}, [][]byte{{1, 2, 3}},
			map[string]int{"frame/" + DropFrameDuplicate: 1}},
		{"gap", []batch.Frame{fr(0, 0, false, 1), fr(0, 2, true, 3)}, nil, map[string]int{"frame/" + DropFrameOutOfOrder: 1}},
		{"new channel replaces an open one", []batch.Frame{fr(0, 0, false, 1), fr(1, 0, true, 5)}, [][]byte{{5}},
			map[string]int{"channel/" + DropChannelReplaced: 1}},
		{"over the size limit", []batch.Frame{fr(0, 0, false, big...), fr(0, 1, false, big...), fr(0, 2, true, 1), fr(1, 0, true, 4)}, [][]byte{{4}},
			map[string]int{"channel/" + DropChannelTooBig: 1, "frame/" + DropFrameNoChannel: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &derivetest.Metrics{}
			a := newChannelAssembler(&frameList{frames: c.frames}, testConfig(), quietLog(), m)
			var got [][]byte
			for {
				body, err := a.NextRawChannel(context.Background())
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				got = append(got, body)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d channels, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], c.want[i]) {
					t.Fatalf("channel %d: %x, want %x", i, got[i], c.want[i])
				}
			}
			for k, v := range c.counts {
				if m.Count(k) != v {
					t.Fatalf("%s = %d, want %d (all: %v)", k, m.Count(k), v, m.Counts())
				}
			}
		})
	}
}

// A channel opened at L1 block n times out once derivation is past n + 50 (Granite).
func TestChannelTimeout(t *testing.T) {
	m := &derivetest.Metrics{}
	src := &frameList{fixedOrigin: fixedOrigin{eth.L1BlockRef{Number: 100}}, frames: []batch.Frame{fr(0, 0, false, 1)}}
	a := newChannelAssembler(src, testConfig(), quietLog(), m)
	if _, err := a.NextRawChannel(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	src.origin = eth.L1BlockRef{Number: 150}
	src.frames = []batch.Frame{fr(0, 1, false, 2)}
	if _, err := a.NextRawChannel(context.Background()); !errors.Is(err, io.EOF) || a.ch == nil || len(a.ch.data) != 2 {
		t.Fatalf("channel at the timeout edge not kept: %v", err)
	}
	src.origin = eth.L1BlockRef{Number: 151}
	src.frames = []batch.Frame{fr(0, 2, true, 3)}
	if _, err := a.NextRawChannel(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("last frame of a timed-out channel made a channel: %v", err)
	}
	if m.Count("channel/"+DropChannelTimeout) != 1 || m.Count("frame/"+DropFrameNoChannel) != 1 {
		t.Fatalf("counts %v", m.Counts())
	}
}
