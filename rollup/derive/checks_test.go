package derive

import (
	"context"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

// The checks' fixture: epochs e0 (L1 10, t=1000) and e1 (L1 11, t=1012); the safe head
// is L2 block 5 at t=1010 in epoch e0, so the next block is at 1012; batches are
// included in L1 block 12.
var (
	e0       = eth.L1BlockRef{Number: 10, Hash: common.Hash{0xe0}, Time: 1000}
	e1       = eth.L1BlockRef{Number: 11, Hash: common.Hash{0xe1}, ParentHash: common.Hash{0xe0}, Time: 1012}
	e2       = eth.L1BlockRef{Number: 12, Hash: common.Hash{0xe2}, ParentHash: common.Hash{0xe1}, Time: 1024}
	safe5    = eth.L2BlockRef{Number: 5, Hash: common.Hash{0x55}, ParentHash: common.Hash{0x44}, Time: 1010, L1Origin: e0.ID(), SequenceNumber: 5}
	safe4    = eth.L2BlockRef{Number: 4, Hash: common.Hash{0x44}, Time: 1008, L1Origin: e0.ID(), SequenceNumber: 4}
	incl12   = eth.L1BlockRef{Number: 12, Time: 1024}
	userTx   = []byte{0x02, 0xc0}
	upTo1012 = []eth.L1BlockRef{e0, e1}
)

func sb(ts, epoch uint64, hash common.Hash, txs ...[]byte) *batch.SingularBatch {
	return &batch.SingularBatch{ParentHash: safe5.Hash, EpochNum: epoch, EpochHash: hash, Timestamp: ts, Transactions: txs}
}

func TestCheckSingular(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	for _, c := range []struct {
		name   string
		b      *batch.SingularBatch
		l1     []eth.L1BlockRef
		safe   eth.L2BlockRef
		incl   eth.L1BlockRef
		cfg    func(*rollup.Config)
		expect verdict
	}{
		{name: "next block in the same epoch", b: sb(1012, 10, e0.Hash, userTx), expect: verdictAccept},
		{name: "future timestamp", b: sb(1014, 10, e0.Hash), expect: verdictDrop},
		{name: "past timestamp", b: sb(1010, 10, e0.Hash), expect: verdictPast},
		{name: "wrong parent", b: func() *batch.SingularBatch { b := sb(1012, 10, e0.Hash); b.ParentHash = common.Hash{1}; return b }(), expect: verdictDrop},
		{name: "included at the end of the window", b: sb(1012, 10, e0.Hash), incl: eth.L1BlockRef{Number: 20}, expect: verdictAccept},
		{name: "included after the window", b: sb(1012, 10, e0.Hash), incl: eth.L1BlockRef{Number: 21}, expect: verdictDrop},
		{name: "epoch before the current", b: sb(1012, 9, common.Hash{9}), expect: verdictDrop},
		{name: "advances the epoch", b: sb(1012, 11, e1.Hash), expect: verdictAccept},
		{name: "advances the epoch without the next L1 block", b: sb(1012, 11, e1.Hash), l1: []eth.L1BlockRef{e0}, expect: verdictUndecided},
		{name: "epoch two ahead", b: sb(1012, 12, e2.Hash), l1: []eth.L1BlockRef{e0, e1, e2}, expect: verdictDrop},
		{name: "epoch hash of another chain", b: sb(1012, 11, common.Hash{0xba, 0xd}), expect: verdictDrop},
		{name: "timestamp before the L1 origin's", b: sb(1012, 11, e1.Hash), l1: []eth.L1BlockRef{e0, {Number: 11, Hash: e1.Hash, Time: 1013}}, expect: verdictDrop},
		{name: "transactions in the Jovian activation block", b: sb(1012, 10, e0.Hash, userTx), cfg: func(c *rollup.Config) { c.JovianTime = u(1012) }, expect: verdictDrop},
		{name: "empty Jovian activation block", b: sb(1012, 10, e0.Hash), cfg: func(c *rollup.Config) { c.JovianTime = u(1012) }, expect: verdictAccept},
		{name: "Jovian active before the block", b: sb(1012, 10, e0.Hash, userTx), cfg: func(c *rollup.Config) { c.JovianTime = u(1010) }, expect: verdictAccept},
		{name: "transactions past the drift", b: sb(1012, 10, e0.Hash, userTx), cfg: func(c *rollup.Config) { c.FjordTime = nil; c.MaxSequencerDrift = 10 }, expect: verdictDrop},
		{name: "empty past the drift while the next origin was due", b: sb(1012, 10, e0.Hash), cfg: func(c *rollup.Config) { c.FjordTime = nil; c.MaxSequencerDrift = 10 }, expect: verdictDrop},
		{name: "empty past the drift before the next origin", b: sb(1012, 10, e0.Hash), l1: []eth.L1BlockRef{e0, {Number: 11, Hash: e1.Hash, Time: 1020}},
			cfg: func(c *rollup.Config) { c.FjordTime = nil; c.MaxSequencerDrift = 10 }, expect: verdictAccept},
		{name: "empty past the drift without the next L1 block", b: sb(1012, 10, e0.Hash), l1: []eth.L1BlockRef{e0},
			cfg: func(c *rollup.Config) { c.FjordTime = nil; c.MaxSequencerDrift = 10 }, expect: verdictUndecided},
		{name: "at the drift limit", b: sb(1012, 10, e0.Hash, userTx), cfg: func(c *rollup.Config) { c.FjordTime = nil; c.MaxSequencerDrift = 12 }, expect: verdictAccept},
		{name: "empty transaction", b: sb(1012, 10, e0.Hash, userTx, []byte{}), expect: verdictDrop},
		{name: "deposit transaction", b: sb(1012, 10, e0.Hash, []byte{0x7e, 0xc0}), expect: verdictDrop},
		{name: "set-code transaction before Isthmus", b: sb(1012, 10, e0.Hash, []byte{0x04, 0xc0}), cfg: func(c *rollup.Config) { c.IsthmusTime = u(5000) }, expect: verdictDrop},
		{name: "set-code transaction with Isthmus", b: sb(1012, 10, e0.Hash, []byte{0x04, 0xc0}), expect: verdictAccept},
		{name: "no L1 blocks", b: sb(1012, 10, e0.Hash), l1: []eth.L1BlockRef{}, expect: verdictUndecided},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.cfg != nil {
				c.cfg(cfg)
			}
			l1 := c.l1
			if l1 == nil {
				l1 = upTo1012
			}
			safe := c.safe
			if safe.IsZero() {
				safe = safe5
			}
			incl := c.incl
			if incl.IsZero() {
				incl = incl12
			}
			if got, reason := checkSingular(cfg, l1, safe, c.b, incl); got != c.expect {
				t.Fatalf("verdict %v (%s), want %v", got, reason, c.expect)
			}
		})
	}
}

func span(parent common.Hash, origin common.Hash, blocks ...*batch.SingularBatch) *spanBatch {
	s := &spanBatch{blocks: blocks}
	copy(s.parentCheck[:], parent[:20])
	copy(s.originCheck[:], origin[:20])
	return s
}

// blk is a span block at ts in epoch.
func blk(ts, epoch uint64, txs ...[]byte) *batch.SingularBatch {
	return &batch.SingularBatch{Timestamp: ts, EpochNum: epoch, Transactions: txs}
}

func TestCheckSpanPrefix(t *testing.T) {
	l2 := derivetest.NewL2()
	l2.Add(safe4, rollup.SystemConfig{})
	l2.Add(safe5, rollup.SystemConfig{})
	for _, c := range []struct {
		name   string
		s      *spanBatch
		l1     []eth.L1BlockRef
		incl   eth.L1BlockRef
		cfg    func(*rollup.Config)
		l2fail bool
		expect verdict
	}{
		{name: "starts at the next block", s: span(safe5.Hash, e1.Hash, blk(1012, 10), blk(1014, 11)), expect: verdictAccept},
		{name: "starts after the next block", s: span(safe5.Hash, e0.Hash, blk(1014, 10)), expect: verdictDrop},
		{name: "ends before the next block", s: span(safe4.Hash, e0.Hash, blk(1010, 10)), expect: verdictPast},
		{name: "parent check mismatch", s: span(common.Hash{1}, e0.Hash, blk(1012, 10)), expect: verdictDrop},
		{name: "overlaps the safe head", s: span(safe4.Hash, e0.Hash, blk(1010, 10), blk(1012, 10)), expect: verdictAccept},
		{name: "overlap with the wrong parent", s: span(safe5.Hash, e0.Hash, blk(1010, 10), blk(1012, 10)), expect: verdictDrop},
		{name: "overlap fetch fails", s: span(safe4.Hash, e0.Hash, blk(1010, 10), blk(1012, 10)), l2fail: true, expect: verdictUndecided},
		{name: "misaligned overlap", s: span(safe4.Hash, e0.Hash, blk(1009, 10), blk(1011, 10), blk(1013, 10)), expect: verdictDrop},
		{name: "starts between safe head and next block", s: span(safe5.Hash, e0.Hash, blk(1011, 10), blk(1013, 10)), expect: verdictDrop},
		{name: "included after the window", s: span(safe5.Hash, e0.Hash, blk(1012, 10)), incl: eth.L1BlockRef{Number: 21}, expect: verdictDrop},
		{name: "start epoch two ahead", s: span(safe5.Hash, e2.Hash, blk(1012, 12)), l1: []eth.L1BlockRef{e0, e1, e2}, expect: verdictDrop},
		{name: "start epoch ahead without the next L1 block", s: span(safe5.Hash, e1.Hash, blk(1012, 11)), l1: []eth.L1BlockRef{e0}, expect: verdictUndecided},
		{name: "origin check mismatch", s: span(safe5.Hash, common.Hash{0xba, 0xd}, blk(1012, 10), blk(1014, 11)), expect: verdictDrop},
		{name: "last epoch not read yet", s: span(safe5.Hash, e2.Hash, blk(1012, 10), blk(1014, 11), blk(1016, 12)), expect: verdictUndecided},
		{name: "start epoch before the parent's", s: span(safe5.Hash, e0.Hash, blk(1012, 9), blk(1014, 10)), expect: verdictDrop},
		{name: "before Delta", s: span(safe5.Hash, e0.Hash, blk(1012, 10)), cfg: func(c *rollup.Config) { c.DeltaTime = nil }, expect: verdictDrop},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.cfg != nil {
				c.cfg(cfg)
			}
			l1 := c.l1
			if l1 == nil {
				l1 = upTo1012
			}
			incl := c.incl
			if incl.IsZero() {
				incl = incl12
			}
			if c.l2fail {
				l2.FailNext(1, errors.New("engine down"))
			}
			if got, reason := checkSpanPrefix(context.Background(), cfg, l1, safe5, c.s, incl, l2); got != c.expect {
				t.Fatalf("verdict %v (%s), want %v", got, reason, c.expect)
			}
		})
	}
}

func TestSpanBlocks(t *testing.T) {
	s := span(safe4.Hash, e1.Hash, blk(1010, 10), blk(1012, 10, userTx), blk(1014, 11))
	got, err := spanBlocks(s, upTo1012, safe5)
	if err != nil || len(got) != 2 || got[0].EpochHash != e0.Hash || got[1].EpochHash != e1.Hash || got[0].Timestamp != 1012 {
		t.Fatalf("blocks %+v, %v", got, err)
	}
	if _, err := spanBlocks(span(safe5.Hash, e0.Hash, blk(1012, 9)), upTo1012, safe5); err == nil {
		t.Fatal("block with an epoch before the safe head's accepted")
	}
	if _, err := spanBlocks(span(safe5.Hash, e2.Hash, blk(1012, 12)), upTo1012, safe5); err == nil {
		t.Fatal("block with an unknown epoch accepted")
	}
}
