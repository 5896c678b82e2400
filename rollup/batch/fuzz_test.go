package batch

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func FuzzParseFrames(f *testing.F) {
	good, _ := TxData(Frame{ID: ChannelID{1}, Data: []byte("abc")}, Frame{ID: ChannelID{1}, Number: 1, IsLast: true})
	f.Add(good[1:])
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, err := ParseFrames(data)
		if err != nil {
			if frames != nil {
				t.Fatal("frames returned with an error")
			}
			return
		}
		// Accepted input re-encodes to itself exactly.
		enc, err := TxData(frames...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc[1:], data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzBlob(f *testing.F) {
	f.Add([]byte("hello blob"), []byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 300), []byte{0, 1, 0, 0x10})
	f.Fuzz(func(t *testing.T, data []byte, raw []byte) {
		// Packing round-trips.
		var b Blob
		err := b.FromData(data)
		if len(data) > MaxBlobDataSize {
			if !errors.Is(err, ErrBlobTooLarge) {
				t.Fatalf("oversized data: %v", err)
			}
		} else {
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.ToData()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round trip: %v", err)
			}
		}
		// An arbitrary blob either fails or re-packs to itself (the first field
		// element's top bits aside, which decoding ignores).
		var r Blob
		copy(r[:], raw)
		out, err := r.ToData()
		if err != nil {
			return
		}
		var again Blob
		if err := again.FromData(out); err != nil {
			t.Fatal(err)
		}
		r[0] &= 0x3F
		if again != r {
			t.Fatal("accepted blob does not re-pack to itself")
		}
	})
}

func FuzzChannelReader(f *testing.F) {
	raw := channelRLP(f, sampleSingular(1), sampleSingular(2))
	f.Add(compressZlib(f, raw), false)
	f.Add(compressBrotli(f, raw), true)
	f.Fuzz(func(t *testing.T, body []byte, fjord bool) {
		const limit = 1 << 20
		cr, err := NewChannelReader(bytes.NewReader(body), limit, fjord)
		if err != nil {
			return
		}
		var total int
		for i := 0; ; i++ {
			data, err := cr.NextData()
			if errors.Is(err, io.EOF) != (err == io.EOF) {
				t.Fatalf("error wraps io.EOF: %v", err)
			}
			if err != nil {
				if err != io.EOF && data != nil {
					t.Fatal("data with an error")
				}
				return
			}
			total += len(data)
			if total > limit {
				t.Fatalf("read %d bytes past the %d bound", total, limit)
			}
			if _, err := UnmarshalBatch(data); errors.Is(err, io.EOF) {
				t.Fatalf("batch error wraps io.EOF: %v", err)
			}
		}
	})
}

func FuzzSingularBatch(f *testing.F) {
	enc, _ := sampleSingular(3).MarshalBinary()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := UnmarshalBatch(append([]byte{SingularBatchType}, data...))
		if err != nil {
			return
		}
		enc, err := b.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		// A decoded batch re-encodes to a prefix of the input (bytes after the list
		// are ignored on decode).
		if !bytes.HasPrefix(append([]byte{SingularBatchType}, data...), enc) {
			t.Fatal("re-encoding is not the consumed input")
		}
	})
}

func FuzzSpanBatch(f *testing.F) {
	f.Add([]byte{0, 0}, uint64(testGenesis), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, genesis, blockTime uint64) {
		b, err := UnmarshalBatch(append([]byte{SpanBatchType}, data...))
		if err != nil {
			return
		}
		raw := b.(*RawSpanBatch)
		enc, err := raw.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		again, err := UnmarshalBatch(enc)
		if err != nil {
			t.Fatalf("re-encoded span batch does not decode: %v", err)
		}
		enc2, _ := again.(*RawSpanBatch).MarshalBinary()
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding not stable")
		}
		span, err := raw.Derive(genesis, blockTime, testChainID)
		if err != nil {
			return
		}
		if len(span.Elements) != raw.BlockCount() {
			t.Fatal("element count")
		}
	})
}
