package batch

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{ID: ChannelID{1, 2, 3}, Number: 0, Data: []byte("hello"), IsLast: false},
		{ID: ChannelID{1, 2, 3}, Number: 1, Data: nil, IsLast: true},
		{ID: ChannelID{0xff}, Number: 0xffff, Data: bytes.Repeat([]byte{7}, 1000)},
	}
	data, err := TxData(frames...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseTxData(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("%d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if got[i].ID != frames[i].ID || got[i].Number != frames[i].Number || got[i].IsLast != frames[i].IsLast ||
			!bytes.Equal(got[i].Data, frames[i].Data) {
			t.Fatalf("frame %d: got %+v want %+v", i, got[i], frames[i])
		}
	}
}

// TestFrameLayout pins the byte layout written out from the specification.
func TestFrameLayout(t *testing.T) {
	f := Frame{ID: ChannelID{0xaa, 0xbb}, Number: 0x0102, Data: []byte{0xde, 0xad}, IsLast: true}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "aabb0000000000000000000000000000" + "0102" + "00000002" + "dead" + "01"
	if hex.EncodeToString(b) != want {
		t.Fatalf("got %x\nwant %s", b, want)
	}
}

func TestParseFramesRejects(t *testing.T) {
	good, _ := (&Frame{ID: ChannelID{1}, Data: []byte{1, 2, 3}}).MarshalBinary()
	cases := map[string][]byte{
		"empty":         {},
		"trailing byte": append(append([]byte{}, good...), 0),
		"short header":  good[:10],
		"short data":    good[:len(good)-2],
		"bad is_last":   append(append([]byte{}, good[:len(good)-1]...), 2),
		"too long": func() []byte {
			b := append([]byte{}, good...)
			b[18], b[19], b[20], b[21] = 0x00, 0x0f, 0x42, 0x41 // 1_000_001
			return b
		}(),
	}
	for name, data := range cases {
		if _, err := ParseFrames(data); !errors.Is(err, ErrInvalidFrame) {
			t.Errorf("%s: err %v, want ErrInvalidFrame", name, err)
		}
	}
	if _, err := ParseTxData(append([]byte{1}, good...)); err == nil {
		t.Error("version 1 accepted")
	}
	if _, err := ParseFrames(good); err != nil {
		t.Errorf("good frame: %v", err)
	}
}

func TestMaxFrameLenAccepted(t *testing.T) {
	f := Frame{Data: make([]byte, MaxFrameLen), IsLast: true}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFrames(b); err != nil {
		t.Fatal(err)
	}
	f.Data = make([]byte, MaxFrameLen+1)
	if _, err := f.MarshalBinary(); err == nil {
		t.Fatal("oversized frame encoded")
	}
}

// TestFrameVectors parses batcher data encoded by the OP Stack's own tests, kept as data.
func TestFrameVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/frame_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs struct {
		Vectors []struct {
			Tx     string
			Frames []struct {
				ID     string
				Number uint16
				Data   string
				Last   bool
			}
		}
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	for i, v := range vs.Vectors {
		data, _ := hex.DecodeString(v.Tx)
		frames, err := ParseTxData(data)
		if err != nil || len(frames) != len(v.Frames) {
			t.Fatalf("vector %d: %d frames, %v", i, len(frames), err)
		}
		for j, want := range v.Frames {
			f := frames[j]
			if hex.EncodeToString(f.ID[:]) != want.ID || f.Number != want.Number || hex.EncodeToString(f.Data) != want.Data || f.IsLast != want.Last {
				t.Fatalf("vector %d frame %d: %+v", i, j, f)
			}
		}
		enc, err := TxData(frames...)
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("vector %d: re-encoding differs", i)
		}
	}
}
