package supervisor

import (
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// memView is a crossView over maps, for checking the rules without a database.
type memView struct {
	states map[interop.ChainID]*chainState
	blocks map[blockAt]*blockEntry
	fail   error
}

func (v *memView) chainState(c interop.ChainID) (*chainState, bool) {
	st, ok := v.states[c]
	return st, ok
}

func (v *memView) block(c interop.ChainID, n uint64) (*blockEntry, error) {
	if v.fail != nil {
		return nil, v.fail
	}
	return v.blocks[blockAt{c, n}], nil
}

func l1At(n uint64) eth.BlockRef {
	return eth.BlockRef{Hash: common.Hash{0x11, byte(n)}, Number: n, ParentHash: common.Hash{0x11, byte(n - 1)}, Time: 1000 + 12*n}
}

func l2At(c interop.ChainID, n, time uint64) eth.BlockRef {
	return eth.BlockRef{Hash: common.Hash{byte(c), byte(n)}, Number: n, Time: time}
}

// initLog is a plain log that can be executed elsewhere.
func initLog(tag byte) logEntry {
	return logEntry{Address: common.Address{tag}, Hash: common.Hash{tag}}
}

// execLog executes log index of block at on chain.
func execLog(chain interop.ChainID, at eth.BlockRef, index uint32, l logEntry) logEntry {
	return logEntry{Address: interop.CrossL2Inbox, Hash: common.Hash{0xee, byte(chain), byte(index)}, Exec: &interop.ExecutingMessage{
		Identifier:  interop.Identifier{Origin: l.Address, BlockNumber: at.Number, LogIndex: index, Timestamp: at.Time, ChainID: chain},
		PayloadHash: l.Hash,
	}}
}

// twoChains has chains 901 and 902 with genesis blocks (time 2000) cross-safe from L1
// block 1, local-safe up to L1 block localSafeL1, and no further blocks yet.
func twoChains(localSafeL1 uint64) *memView {
	v := &memView{states: map[interop.ChainID]*chainState{}, blocks: map[blockAt]*blockEntry{}}
	for _, c := range []interop.ChainID{901, 902} {
		g := l2At(c, 0, 2000)
		anchor := eth.DerivedBlockRefPair{Source: l1At(1), Derived: g}
		v.states[c] = &chainState{Anchor: anchor, LocalUnsafe: g, CrossUnsafe: g,
			LocalSafe: eth.DerivedBlockRefPair{Source: l1At(localSafeL1), Derived: g}, CrossSafe: anchor, Finalized: g}
		src := l1At(1)
		v.blocks[blockAt{c, 0}] = &blockEntry{Ref: g, Source: &src}
	}
	return v
}

// add appends block 1 of chain c, local-safe from L1 block source.
func (v *memView) add(c interop.ChainID, time, source uint64, logs ...logEntry) *blockEntry {
	src := l1At(source)
	b := &blockEntry{Ref: l2At(c, 1, time), Logs: logs, Source: &src}
	v.blocks[blockAt{c, 1}] = b
	st := v.states[c]
	st.LocalUnsafe = b.Ref
	st.LocalSafe.Derived = b.Ref
	return b
}

var deps = interop.NewDependencySet(901, 902)

func TestCrossSafeRespectsL1Scope(t *testing.T) {
	// 901's block 1 was derived from L1 block 8 and is cross-safe from it; 902's block 1,
	// derived from L1 block 5, executes its message.
	v := twoChains(6)
	a1 := v.add(901, 2002, 8, initLog(0xaa))
	scope := l1At(8)
	a1.CrossSource = &scope
	v.states[901].CrossSafe = eth.DerivedBlockRefPair{Source: scope, Derived: a1.Ref}
	v.states[901].CrossUnsafe = a1.Ref
	b1 := v.add(902, 2004, 5, execLog(901, a1.Ref, 0, initLog(0xaa)))

	// 902 has been derived only up to L1 block 6: a verifier that read L1 up to there
	// cannot know the initiating block, so the executing block must wait.
	d, err := checkCandidate(v, deps, 902, b1, safeLevel)
	if err != nil || d.verdict != wait {
		t.Fatalf("with 902 derived up to L1 6: %v %v (%s), want wait", d.verdict, err, d.why)
	}
	// Unsafe safety knows no L1 scope.
	if d, err := checkCandidate(v, deps, 902, b1, unsafeLevel); err != nil || d.verdict != valid {
		t.Fatalf("cross-unsafe: %v %v (%s)", d.verdict, err, d.why)
	}
	// Once 902's derivation has read L1 block 8, the block is cross-safe from block 8,
	// not from its own source 5.
	v.states[902].LocalSafe.Source = l1At(9)
	d, err = checkCandidate(v, deps, 902, b1, safeLevel)
	if err != nil || d.verdict != valid {
		t.Fatalf("with 902 derived up to L1 9: %v %v (%s), want valid", d.verdict, err, d.why)
	}
	if d.scope != l1At(8) {
		t.Fatalf("cross-safe from L1 %d, want 8", d.scope.Number)
	}
}

func TestMessagesWithinOneTimestamp(t *testing.T) {
	// Blocks 1 of both chains share timestamp 2002 and execute each other's first log.
	v := twoChains(3)
	a := l2At(901, 1, 2002)
	b := l2At(902, 1, 2002)
	a1 := v.add(901, 2002, 2, initLog(0xaa), execLog(902, b, 0, initLog(0xbb)))
	b1 := v.add(902, 2002, 2, initLog(0xbb), execLog(901, a, 0, initLog(0xaa)))
	for _, lvl := range []level{unsafeLevel, safeLevel} {
		for c, blk := range map[interop.ChainID]*blockEntry{901: a1, 902: b1} {
			d, err := checkCandidate(v, deps, c, blk, lvl)
			if err != nil || d.verdict != valid {
				t.Fatalf("level %d chain %d: %v %v (%s), want valid", lvl, c, d.verdict, err, d.why)
			}
		}
	}

	// Each block executes the other's second log, which comes after its own executing
	// message: neither can have happened first.
	v = twoChains(3)
	a1 = v.add(901, 2002, 2, execLog(902, b, 1, initLog(0xbb)), initLog(0xaa))
	v.add(902, 2002, 2, execLog(901, a, 1, initLog(0xaa)), initLog(0xbb))
	d, err := checkCandidate(v, deps, 901, a1, safeLevel)
	if err != nil || d.verdict != invalid {
		t.Fatalf("cycle: %v %v (%s), want invalid", d.verdict, err, d.why)
	}
}

func TestNewerBlockOnAnotherChainWaits(t *testing.T) {
	// A message from a block at the same timestamp that is not the next block of its chain
	// (its predecessor is not cross yet) waits instead of joining the hazard set.
	v := twoChains(3)
	v.add(901, 2002, 2, initLog(0xaa))
	a2 := &blockEntry{Ref: eth.BlockRef{Hash: common.Hash{0x9, 2}, Number: 2, Time: 2004}, Logs: []logEntry{initLog(0xa2)}, Source: ptr(l1At(2))}
	v.blocks[blockAt{901, 2}] = a2
	v.states[901].LocalUnsafe, v.states[901].LocalSafe.Derived = a2.Ref, a2.Ref
	b1 := v.add(902, 2004, 2, execLog(901, a2.Ref, 0, initLog(0xa2)))
	if d, err := checkCandidate(v, deps, 902, b1, safeLevel); err != nil || d.verdict != wait {
		t.Fatalf("%v %v (%s), want wait", d.verdict, err, d.why)
	}
}

func TestReadErrorIsNotInvalid(t *testing.T) {
	v := twoChains(3)
	a1 := v.add(901, 2002, 2, initLog(0xaa))
	b1 := v.add(902, 2004, 2, execLog(901, a1.Ref, 0, initLog(0xaa)))
	v.fail = errors.New("disk on fire")
	d, err := checkCandidate(v, deps, 902, b1, safeLevel)
	if err == nil || !errors.Is(err, v.fail) {
		t.Fatalf("read error gave verdict %v (%s), err %v", d.verdict, d.why, err)
	}
}

func ptr[T any](v T) *T { return &v }
