package interop

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// CrossL2Inbox is the predeploy that emits an ExecutingMessage event for every message a
// transaction executes.
var CrossL2Inbox = common.HexToAddress("0x4200000000000000000000000000000000000022")

// ExecutingMessageTopic is topic 0 of the ExecutingMessage event.
var ExecutingMessageTopic = crypto.Keccak256Hash([]byte("ExecutingMessage(bytes32,(address,uint256,uint256,uint256,uint256))"))

// Identifier locates an initiating message: the log at LogIndex of block BlockNumber on
// chain ChainID, emitted by Origin in a block with timestamp Timestamp.
type Identifier struct {
	Origin      common.Address `json:"origin"`
	BlockNumber uint64         `json:"blockNumber"`
	LogIndex    uint32         `json:"logIndex"`
	Timestamp   uint64         `json:"timestamp"`
	ChainID     ChainID        `json:"chainID"`
}

// ExecutingMessage is an executing message decoded from a CrossL2Inbox log: the initiating
// message it claims exists, and the hash of that message's payload.
type ExecutingMessage struct {
	Identifier  Identifier  `json:"identifier"`
	PayloadHash common.Hash `json:"payloadHash"`
}

// PayloadHash is the hash an executing message commits to for the initiating log l: the
// keccak256 of its topics followed by its data.
func PayloadHash(l *types.Log) common.Hash {
	buf := make([]byte, 0, 32*len(l.Topics)+len(l.Data))
	for _, t := range l.Topics {
		buf = append(buf, t[:]...)
	}
	buf = append(buf, l.Data...)
	return crypto.Keccak256Hash(buf)
}

// ErrNotExecutingMessage says a log is not an ExecutingMessage event of the CrossL2Inbox.
var ErrNotExecutingMessage = errors.New("not an executing message")

// DecodeExecutingMessage decodes a CrossL2Inbox ExecutingMessage log. Logs from other
// addresses or with other topics give ErrNotExecutingMessage; a malformed event from the
// inbox gives another error.
func DecodeExecutingMessage(l *types.Log) (*ExecutingMessage, error) {
	if l.Address != CrossL2Inbox || len(l.Topics) == 0 || l.Topics[0] != ExecutingMessageTopic {
		return nil, ErrNotExecutingMessage
	}
	if len(l.Topics) != 2 {
		return nil, fmt.Errorf("executing message: %d topics, want 2", len(l.Topics))
	}
	if len(l.Data) != 5*32 {
		return nil, fmt.Errorf("executing message: %d data bytes, want 160", len(l.Data))
	}
	word := func(i int) []byte { return l.Data[32*i : 32*(i+1)] }
	// fits checks that only the low size bytes of a word are used.
	fits := func(w []byte, size int, name string) error {
		for _, b := range w[:32-size] {
			if b != 0 {
				return fmt.Errorf("executing message: %s does not fit in %d bytes", name, size)
			}
		}
		return nil
	}
	for i, f := range []struct {
		size int
		name string
	}{{20, "origin"}, {8, "block number"}, {4, "log index"}, {8, "timestamp"}, {8, "chain ID"}} {
		if err := fits(word(i), f.size, f.name); err != nil {
			return nil, err
		}
	}
	return &ExecutingMessage{
		Identifier: Identifier{
			Origin:      common.BytesToAddress(word(0)),
			BlockNumber: binary.BigEndian.Uint64(word(1)[24:]),
			LogIndex:    binary.BigEndian.Uint32(word(2)[28:]),
			Timestamp:   binary.BigEndian.Uint64(word(3)[24:]),
			ChainID:     ChainID(binary.BigEndian.Uint64(word(4)[24:])),
		},
		PayloadHash: l.Topics[1],
	}, nil
}

// EncodeExecutingMessage builds the log the CrossL2Inbox emits for m; chains use it to
// emit executing messages, tests to build blocks that carry them.
func EncodeExecutingMessage(m ExecutingMessage) *types.Log {
	data := make([]byte, 5*32)
	copy(data[12:32], m.Identifier.Origin[:])
	binary.BigEndian.PutUint64(data[32+24:64], m.Identifier.BlockNumber)
	binary.BigEndian.PutUint32(data[64+28:96], m.Identifier.LogIndex)
	binary.BigEndian.PutUint64(data[96+24:128], m.Identifier.Timestamp)
	binary.BigEndian.PutUint64(data[128+24:160], uint64(m.Identifier.ChainID))
	return &types.Log{
		Address: CrossL2Inbox,
		Topics:  []common.Hash{ExecutingMessageTopic, m.PayloadHash},
		Data:    data,
	}
}
