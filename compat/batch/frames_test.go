package batch

import (
	"bytes"
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/opkit/opkit/rollup/batch"
)

// FuzzDiffFrames parses the same batcher data with both parsers: the same frames or
// both refuse it.
func FuzzDiffFrames(f *testing.F) {
	var buf bytes.Buffer
	for i, fr := range []derive.Frame{{ID: derive.ChannelID{1}, Data: []byte("abc")}, {ID: derive.ChannelID{1}, FrameNumber: 1, IsLast: true}} {
		_ = i
		_ = fr.MarshalBinary(&buf)
	}
	f.Add(append([]byte{0}, buf.Bytes()...))
	f.Add(append([]byte{0}, buf.Bytes()[:buf.Len()-1]...))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		opFrames, opErr := derive.ParseFrames(data)
		okFrames, okErr := batch.ParseTxData(data)
		if (opErr == nil) != (okErr == nil) {
			t.Fatalf("op-node err %v, opkit err %v", opErr, okErr)
		}
		if opErr != nil {
			return
		}
		if len(opFrames) != len(okFrames) {
			t.Fatalf("op-node %d frames, opkit %d", len(opFrames), len(okFrames))
		}
		for i := range opFrames {
			o, k := opFrames[i], okFrames[i]
			if [16]byte(o.ID) != [16]byte(k.ID) || o.FrameNumber != k.Number || o.IsLast != k.IsLast || !bytes.Equal(o.Data, k.Data) {
				t.Fatalf("frame %d differs", i)
			}
		}
		// The other direction: opkit's encoding of the frames is op-node's.
		enc, err := batch.TxData(okFrames...)
		if err != nil {
			t.Fatal(err)
		}
		var opEnc bytes.Buffer
		opEnc.WriteByte(0)
		for _, o := range opFrames {
			_ = o.MarshalBinary(&opEnc)
		}
		if !bytes.Equal(enc, opEnc.Bytes()) {
			t.Fatal("frame encodings differ")
		}
	})
}

// FuzzDiffBlob packs data with both blob codecs (identical blobs) and unpacks an
// arbitrary blob with both (same data or both refuse).
func FuzzDiffBlob(f *testing.F) {
	f.Add([]byte("hello"), []byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 1000), []byte{0x80, 0, 0, 0, 1, 2})
	f.Add([]byte{}, []byte{0, 0, 0x01, 0xfc, 0xfc})
	f.Fuzz(func(t *testing.T, data, raw []byte) {
		var opB eth.Blob
		var okB batch.Blob
		opErr := opB.FromData(data)
		okErr := okB.FromData(data)
		if (opErr == nil) != (okErr == nil) {
			t.Fatalf("FromData: op-service err %v, opkit err %v", opErr, okErr)
		}
		if opErr == nil && [batch.BlobSize]byte(opB) != [batch.BlobSize]byte(okB) {
			t.Fatal("packed blobs differ")
		}
		// raw fills the blob from the front; the tail of raw, if long, is repeated at
		// the end too so trailing-byte checks get exercised.
		var in eth.Blob
		copy(in[:], raw)
		if len(raw) > 8 {
			copy(in[batch.BlobSize-len(raw)/2:], raw[:len(raw)/2])
		}
		opData, opErr := in.ToData()
		okIn := batch.Blob(in)
		okData, okErr := okIn.ToData()
		if (opErr == nil) != (okErr == nil) {
			t.Fatalf("ToData: op-service err %v, opkit err %v", opErr, okErr)
		}
		if opErr == nil && !bytes.Equal(opData, okData) {
			t.Fatal("unpacked data differs")
		}
	})
}
