package eth

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// OutputVersionV0 is the version word of a version-0 output root.
var OutputVersionV0 = common.Hash{}

// OutputV0 is the preimage of a version-0 L2 output root.
type OutputV0 struct {
	StateRoot                common.Hash `json:"stateRoot"`
	MessagePasserStorageRoot common.Hash `json:"messagePasserStorageRoot"`
	BlockHash                common.Hash `json:"blockHash"`
}

// outputV0Size is the marshalled size: version ‖ stateRoot ‖ messagePasserStorageRoot ‖ blockHash.
const outputV0Size = 4 * 32

// Marshal returns version 0 ‖ stateRoot ‖ messagePasserStorageRoot ‖ blockHash.
func (o OutputV0) Marshal() []byte {
	buf := make([]byte, 0, outputV0Size)
	buf = append(buf, OutputVersionV0[:]...)
	buf = append(buf, o.StateRoot[:]...)
	buf = append(buf, o.MessagePasserStorageRoot[:]...)
	buf = append(buf, o.BlockHash[:]...)
	return buf
}

// Root returns the output root: keccak256 of the marshalled output.
func (o OutputV0) Root() common.Hash { return crypto.Keccak256Hash(o.Marshal()) }

// ErrInvalidOutput is returned when bytes do not hold a version-0 output.
var ErrInvalidOutput = errors.New("invalid output")

// UnmarshalOutputV0 parses the 128-byte preimage of a version-0 output root.
func UnmarshalOutputV0(data []byte) (OutputV0, error) {
	if len(data) != outputV0Size {
		return OutputV0{}, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidOutput, len(data), outputV0Size)
	}
	if common.BytesToHash(data[:32]) != OutputVersionV0 {
		return OutputV0{}, fmt.Errorf("%w: version %x", ErrInvalidOutput, data[:32])
	}
	return OutputV0{
		StateRoot:                common.BytesToHash(data[32:64]),
		MessagePasserStorageRoot: common.BytesToHash(data[64:96]),
		BlockHash:                common.BytesToHash(data[96:128]),
	}, nil
}

// OutputResponse is the answer of optimism_outputAtBlock.
type OutputResponse struct {
	Version               common.Hash `json:"version"`
	OutputRoot            common.Hash `json:"outputRoot"`
	BlockRef              L2BlockRef  `json:"blockRef"`
	WithdrawalStorageRoot common.Hash `json:"withdrawalStorageRoot"`
	StateRoot             common.Hash `json:"stateRoot"`
	Status                *SyncStatus `json:"syncStatus"`
}
