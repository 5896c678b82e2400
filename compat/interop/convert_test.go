package interop_test

import (
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"

	"github.com/opkit/opkit/eth"
)

func toOpID(id eth.BlockID) opeth.BlockID { return opeth.BlockID{Hash: id.Hash, Number: id.Number} }

func toOpRef(r eth.BlockRef) opeth.BlockRef {
	return opeth.BlockRef{Hash: r.Hash, Number: r.Number, ParentHash: r.ParentHash, Time: r.Time}
}

func toOpL2Ref(r eth.L2BlockRef) opeth.L2BlockRef {
	return opeth.L2BlockRef{
		Hash: r.Hash, Number: r.Number, ParentHash: r.ParentHash, Time: r.Time,
		L1Origin: toOpID(r.L1Origin), SequenceNumber: r.SequenceNumber,
	}
}

var ethereumNotFound = ethereum.NotFound
