package derive

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

// channelList feeds channel bodies then io.EOF.
type channelList struct {
	fixedOrigin
	bodies  [][]byte
	flushes int
}

func (c *channelList) NextRawChannel(context.Context) ([]byte, error) {
	if len(c.bodies) == 0 {
		return nil, io.EOF
	}
	b := c.bodies[0]
	c.bodies = c.bodies[1:]
	return b, nil
}

func (c *channelList) FlushChannel() { c.flushes++ }

func readAll(t *testing.T, r *channelReader) []decodedBatch {
	t.Helper()
	var out []decodedBatch
	for {
		b, err := r.NextBatch(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		} else if errors.Is(err, ErrNotEnoughData) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// spanChannel builds a channel with the batcher's span channel out from L2 blocks.
func spanChannel(t *testing.T, cfg *rollup.Config, algo batch.Compression, n int) []byte {
	t.Helper()
	co, err := batch.NewSpanChannelOut(batch.ChannelOutConfig{TargetSize: 1 << 20, Compression: algo, GenesisTime: cfg.Genesis.L2Time, ChainID: cfg.L2ChainID})
	if err != nil {
		t.Fatal(err)
	}
	parent := cfg.Genesis.L2.Hash
	for i := 1; i <= n; i++ {
		info := &rollup.L1BlockInfo{Number: 0, Time: 1000, BaseFee: big.NewInt(1), BlockHash: common.Hash{0xe0}, SequenceNumber: uint64(i)}
		data, err := info.MarshalIsthmus()
		if err != nil {
			t.Fatal(err)
		}
		dep := types.NewTx(&types.DepositTx{From: rollup.L1InfoDepositor, To: &rollup.L1BlockAddress, Gas: 1_000_000, Data: data})
		h := &types.Header{ParentHash: parent, Number: big.NewInt(int64(i)), Time: cfg.Genesis.L2Time + uint64(i)*cfg.BlockTime}
		b := types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: types.Transactions{dep}})
		if _, err := co.AddBlock(b); err != nil {
			t.Fatal(err)
		}
		parent = b.Hash()
	}
	if err := co.Close(); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for {
		f, err := co.OutputFrame(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, f.Data...)
		if f.IsLast {
			return body
		}
	}
}

func TestChannelReader(t *testing.T) {
	cfg := testConfig()
	// A zlib "bomb": one entry declaring more than the decompressed limit.
	var bomb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&bomb, zlib.BestCompression)
	zw.Write([]byte{0xbb, 0x06, 0x00, 0x00, 0x00})
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	// A singular batch, then an entry of an unknown batch type: the rest of that channel goes.
	var bad bytes.Buffer
	zw, _ = zlib.NewWriterLevel(&bad, zlib.BestCompression)
	batch.WriteChannelEntry(zw, &batch.SingularBatch{Timestamp: 1002})
	rlp.Encode(zw, []byte{7, 1, 2})
	batch.WriteChannelEntry(zw, &batch.SingularBatch{Timestamp: 1004})
	zw.Close()
	src := &channelList{bodies: [][]byte{
		spanChannel(t, cfg, batch.Brotli, 3),
		{0x05, 1, 2, 3},
		bomb.Bytes(),
		spanChannel(t, cfg, batch.Zlib, 2),
		bad.Bytes(),
	}}
	m := &derivetest.Metrics{}
	got := readAll(t, newChannelReader(src, cfg, quietLog(), m))
	if len(got) != 3 || got[0].span == nil || len(got[0].span.blocks) != 3 || got[1].span == nil || len(got[1].span.blocks) != 2 ||
		got[2].singular == nil || got[2].singular.Timestamp != 1002 {
		t.Fatalf("batches %+v", got)
	}
	if b := got[0].span.blocks[2]; b.Timestamp != 1006 || b.EpochNum != 0 {
		t.Fatalf("span block %+v", b)
	}
	if m.Count("channel/"+DropChannelCompression) != 1 || m.Count("channel/"+DropChannelRead) != 1 ||
		m.Count("channel/"+DropChannelOutputLimit) != 1 {
		t.Fatalf("counts %v", m.Counts())
	}

	// Brotli is refused before Fjord.
	cfg.FjordTime = new(uint64)
	*cfg.FjordTime = 5000
	src = &channelList{fixedOrigin: fixedOrigin{eth.L1BlockRef{Time: 1000}}, bodies: [][]byte{spanChannel(t, cfg, batch.Brotli, 1)}}
	m = &derivetest.Metrics{}
	if got := readAll(t, newChannelReader(src, cfg, quietLog(), m)); len(got) != 0 || m.Count("channel/"+DropChannelCompression) != 1 {
		t.Fatalf("brotli before Fjord: %d batches, counts %v", len(got), m.Counts())
	}
}
