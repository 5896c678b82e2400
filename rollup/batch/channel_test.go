package batch

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
)

func sampleSingular(i int) *SingularBatch {
	return &SingularBatch{
		ParentHash: common.Hash{byte(i), 1}, EpochNum: uint64(100 + i), EpochHash: common.Hash{byte(i), 2},
		Timestamp: uint64(1000 + 2*i), Transactions: [][]byte{{0x02, byte(i)}, bytes.Repeat([]byte{byte(i)}, 40)},
	}
}

func compressZlib(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressBrotli(t testing.TB, raw []byte) []byte {
	buf := bytes.NewBuffer([]byte{ChannelVersionBrotli})
	w := brotli.NewWriterLevel(buf, 10)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func channelRLP(t testing.TB, batches ...Batch) []byte {
	var raw bytes.Buffer
	for _, b := range batches {
		if err := WriteChannelEntry(&raw, b); err != nil {
			t.Fatal(err)
		}
	}
	return raw.Bytes()
}

func readAll(t testing.TB, body []byte, limit uint64, fjord bool) ([]Batch, error) {
	cr, err := NewChannelReader(bytes.NewReader(body), limit, fjord)
	if err != nil {
		return nil, err
	}
	var out []Batch
	for {
		b, err := cr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
}

func TestChannelReaderZlibAndBrotli(t *testing.T) {
	raw := channelRLP(t, sampleSingular(1), sampleSingular(2), sampleSingular(3))
	for name, body := range map[string][]byte{"zlib": compressZlib(t, raw), "brotli": compressBrotli(t, raw)} {
		got, err := readAll(t, body, MaxRLPBytesPerChannelFjord, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 3 {
			t.Fatalf("%s: %d batches", name, len(got))
		}
		for i, b := range got {
			sb := b.(*SingularBatch)
			want := sampleSingular(i + 1)
			if sb.ParentHash != want.ParentHash || sb.EpochNum != want.EpochNum || sb.Timestamp != want.Timestamp ||
				len(sb.Transactions) != 2 || !bytes.Equal(sb.Transactions[1], want.Transactions[1]) {
				t.Fatalf("%s: batch %d = %+v", name, i, sb)
			}
		}
	}
	if _, err := readAll(t, compressBrotli(t, raw), MaxRLPBytesPerChannel, false); !errors.Is(err, ErrBrotliBeforeFjord) {
		t.Fatalf("brotli before Fjord: %v", err)
	}
	if _, err := NewChannelReader(bytes.NewReader([]byte{0x02, 1, 2}), MaxRLPBytesPerChannel, true); !errors.Is(err, ErrUnknownCompression) {
		t.Fatalf("unknown compression: %v", err)
	}
}

func TestChannelReaderBound(t *testing.T) {
	raw := channelRLP(t, sampleSingular(1), sampleSingular(2))
	first := len(channelRLP(t, sampleSingular(1)))
	// Exactly one batch fits: reading stops cleanly at the bound.
	got, err := readAll(t, compressZlib(t, raw), uint64(first), false)
	if err != nil || len(got) != 1 {
		t.Fatalf("bound at one batch: %d batches, %v", len(got), err)
	}
	// One byte short of the first batch: the declared size is refused.
	got, err = readAll(t, compressZlib(t, raw), uint64(first-1), false)
	if !errors.Is(err, ErrBatchTooLarge) || len(got) != 0 {
		t.Fatalf("bound inside the first batch: %d batches, %v", len(got), err)
	}
}

// TestChannelReaderZipBomb decompresses a stream that expands without limit and checks
// that neither the output nor the heap grows past the bound.
func TestChannelReaderZipBomb(t *testing.T) {
	// A channel entry declaring a 1 GB string, then zeros for ever.
	var raw bytes.Buffer
	raw.Write([]byte{0xBB, 0x40, 0x00, 0x00, 0x00}) // string of 0x40000000 bytes
	zeros := make([]byte, 1<<20)
	var body bytes.Buffer
	w, _ := zlib.NewWriterLevel(&body, zlib.BestCompression)
	_, _ = w.Write(raw.Bytes())
	for i := 0; i < 12; i++ {
		_, _ = w.Write(zeros)
	}
	_ = w.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readAll(t, body.Bytes(), MaxRLPBytesPerChannel, false)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("err %v, want ErrBatchTooLarge", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("allocated %d bytes for a refused batch", grew)
	}

	// A string just under the bound that is then cut short allocates only what arrived.
	raw.Reset()
	n := MaxRLPBytesPerChannel - 10
	raw.Write([]byte{0xBA, byte(n >> 16), byte(n >> 8), byte(n)}) // string of n bytes
	raw.Write(make([]byte, 3<<20))
	short := compressZlib(t, raw.Bytes())
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = readAll(t, short, MaxRLPBytesPerChannel, false)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("truncated batch accepted")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("allocated %d bytes for 3 MB of delivered data", grew)
	}
}

func TestChannelReaderRejectsList(t *testing.T) {
	var raw bytes.Buffer
	_ = rlp.Encode(&raw, []uint64{1, 2})
	if _, err := readAll(t, compressZlib(t, raw.Bytes()), MaxRLPBytesPerChannel, false); !errors.Is(err, ErrChannelRLP) {
		t.Fatalf("list entry: %v", err)
	}
}

func TestSingularRoundTrip(t *testing.T) {
	b := sampleSingular(5)
	enc, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if enc[0] != SingularBatchType {
		t.Fatalf("type byte %d", enc[0])
	}
	got, err := UnmarshalBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	re, _ := got.(*SingularBatch).MarshalBinary()
	if !bytes.Equal(re, enc) {
		t.Fatal("re-encoding differs")
	}
	for _, bad := range [][]byte{{}, {0}, {2, 0xc0}, append([]byte{0}, enc[2:]...)} {
		if _, err := UnmarshalBatch(bad); !errors.Is(err, ErrInvalidBatch) {
			t.Errorf("%x: %v", bad, err)
		}
	}
}

// TestChannelReaderEOFOnlyAtEnd: a batch that fails to decode never reads as the clean
// end of the channel, even when the failure is an empty payload.
func TestChannelReaderEOFOnlyAtEnd(t *testing.T) {
	for _, raw := range [][]byte{{0x00}, {0x01}, {0x81, 0x80}} {
		_, err := readAll(t, compressZlib(t, raw), MaxRLPBytesPerChannel, false)
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("%x: err %v", raw, err)
		}
	}
}
