package eth

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// BlockID names a block by hash and number.
type BlockID struct {
	Hash   common.Hash `json:"hash"`
	Number uint64      `json:"number"`
}

func (id BlockID) String() string { return fmt.Sprintf("%s:%d", id.Hash, id.Number) }

// IsZero reports whether id is the zero value, which the protocol uses for "none".
func (id BlockID) IsZero() bool { return id == BlockID{} }

// BlockSeal is a block identifier with its timestamp.
type BlockSeal struct {
	Hash      common.Hash `json:"hash"`
	Number    uint64      `json:"number"`
	Timestamp uint64      `json:"timestamp"`
}

// ID drops the timestamp.
func (s BlockSeal) ID() BlockID { return BlockID{Hash: s.Hash, Number: s.Number} }

func (s BlockSeal) String() string { return fmt.Sprintf("%s:%d@%d", s.Hash, s.Number, s.Timestamp) }

// BlockRef references a block with its parent and timestamp. It is used for L1 blocks and,
// in the interop protocol, for L2 blocks when the L1 origin is not needed.
type BlockRef struct {
	Hash       common.Hash `json:"hash"`
	Number     uint64      `json:"number"`
	ParentHash common.Hash `json:"parentHash"`
	Time       uint64      `json:"timestamp"`
}

// L1BlockRef is a BlockRef on the L1 chain; the name documents intent at use sites.
type L1BlockRef = BlockRef

func (r BlockRef) String() string { return fmt.Sprintf("%s:%d", r.Hash, r.Number) }

// ID returns the block's identifier.
func (r BlockRef) ID() BlockID { return BlockID{Hash: r.Hash, Number: r.Number} }

// ParentID returns the parent's identifier; the genesis block is its own parent number.
func (r BlockRef) ParentID() BlockID {
	return BlockID{Hash: r.ParentHash, Number: parentNumber(r.Number)}
}

// Seal returns the block's seal.
func (r BlockRef) Seal() BlockSeal {
	return BlockSeal{Hash: r.Hash, Number: r.Number, Timestamp: r.Time}
}

// IsZero reports whether r is the zero value.
func (r BlockRef) IsZero() bool { return r == BlockRef{} }

// BlockRefFromHeader builds the reference of a header.
func BlockRefFromHeader(h *types.Header) BlockRef {
	return BlockRef{Hash: h.Hash(), Number: h.Number.Uint64(), ParentHash: h.ParentHash, Time: h.Time}
}

// L2BlockRef references an L2 block together with the L1 block it was derived from (its
// L1 origin) and its distance to the first block of that epoch.
type L2BlockRef struct {
	Hash           common.Hash `json:"hash"`
	Number         uint64      `json:"number"`
	ParentHash     common.Hash `json:"parentHash"`
	Time           uint64      `json:"timestamp"`
	L1Origin       BlockID     `json:"l1origin"`
	SequenceNumber uint64      `json:"sequenceNumber"`
}

func (r L2BlockRef) String() string { return fmt.Sprintf("%s:%d", r.Hash, r.Number) }

// ID returns the block's identifier.
func (r L2BlockRef) ID() BlockID { return BlockID{Hash: r.Hash, Number: r.Number} }

// ParentID returns the parent's identifier.
func (r L2BlockRef) ParentID() BlockID {
	return BlockID{Hash: r.ParentHash, Number: parentNumber(r.Number)}
}

// BlockRef drops the L1 origin and sequence number.
func (r L2BlockRef) BlockRef() BlockRef {
	return BlockRef{Hash: r.Hash, Number: r.Number, ParentHash: r.ParentHash, Time: r.Time}
}

// IsZero reports whether r is the zero value.
func (r L2BlockRef) IsZero() bool { return r == L2BlockRef{} }

func parentNumber(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return n - 1
}

// DerivedBlockRefPair is an L2 block (Derived) together with the L1 block (Source) it was
// derived from.
type DerivedBlockRefPair struct {
	Source  BlockRef `json:"source"`
	Derived BlockRef `json:"derived"`
}

// IDs drops everything but the identifiers.
func (p DerivedBlockRefPair) IDs() DerivedIDPair {
	return DerivedIDPair{Source: p.Source.ID(), Derived: p.Derived.ID()}
}

// DerivedIDPair is DerivedBlockRefPair reduced to identifiers.
type DerivedIDPair struct {
	Source  BlockID `json:"source"`
	Derived BlockID `json:"derived"`
}

// BlockReplacement says that Invalidated was replaced by Replacement.
type BlockReplacement struct {
	Replacement BlockRef    `json:"replacement"`
	Invalidated common.Hash `json:"invalidated"`
}
