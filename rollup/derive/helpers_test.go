package derive

import (
	"context"
	"io"
	"log/slog"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

var testBatcher = common.HexToAddress("0xba7c4e7")

// testConfig has every fork through Isthmus at genesis, 2 s blocks and a 10-block
// sequence window.
func testConfig() *rollup.Config {
	zero := uint64(0)
	return &rollup.Config{
		Genesis: rollup.Genesis{
			L1: eth.BlockID{Hash: common.Hash{0x11}, Number: 0}, L2: eth.BlockID{Hash: common.Hash{0x22}, Number: 0}, L2Time: 1000,
			SystemConfig: rollup.SystemConfig{BatcherAddr: testBatcher, GasLimit: 30_000_000, Scalar: rollup.EncodeScalars(1, 1)},
		},
		BlockTime: 2, MaxSequencerDrift: 600, SeqWindowSize: 10, ChannelTimeout: 300,
		L1ChainID: big.NewInt(900), L2ChainID: big.NewInt(901),
		RegolithTime: &zero, CanyonTime: &zero, DeltaTime: &zero, EcotoneTime: &zero, FjordTime: &zero,
		GraniteTime: &zero, HoloceneTime: &zero, IsthmusTime: &zero,
		BatchInboxAddress: common.HexToAddress("0xff00000000000000000000000000000000000901"),
		ChainOpConfig:     &params.OptimismConfig{EIP1559Elasticity: 6, EIP1559Denominator: 50, EIP1559DenominatorCanyon: new(uint64)},
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fixedOrigin is an upstream stage at a settable origin.
type fixedOrigin struct{ origin eth.L1BlockRef }

func (f *fixedOrigin) Origin() eth.L1BlockRef { return f.origin }

// frameList feeds frames then io.EOF.
type frameList struct {
	fixedOrigin
	frames []batch.Frame
}

func (f *frameList) NextFrame(context.Context) (batch.Frame, error) {
	if len(f.frames) == 0 {
		return batch.Frame{}, io.EOF
	}
	fr := f.frames[0]
	f.frames = f.frames[1:]
	return fr, nil
}

// dataList feeds data items then io.EOF.
type dataList struct {
	fixedOrigin
	items [][]byte
}

func (d *dataList) NextData(context.Context) ([]byte, error) {
	if len(d.items) == 0 {
		return nil, io.EOF
	}
	it := d.items[0]
	d.items = d.items[1:]
	return it, nil
}

func cid(b byte) batch.ChannelID { return batch.ChannelID{b} }

func fr(id byte, n uint16, last bool, data ...byte) batch.Frame {
	return batch.Frame{ID: cid(id), Number: n, IsLast: last, Data: data}
}
