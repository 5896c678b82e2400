package interop

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// An executing message's transaction names the message in its access list, as storage
// keys of the CrossL2Inbox: a lookup entry (type 1: chain ID, block number, timestamp and
// log index), a chain-ID extension (type 2) only for chain IDs above 64 bits, and a
// checksum entry (type 3) that commits to all of it and to the log. Execution clients
// use the keys to ask the supervisor about the message before a transaction enters the
// pool (supervisor_checkAccessList), and drop such transactions instead of re-adding them
// to the pool when a reorg or a replacement removes their block.

// Access-list entry types.
const (
	accessLookup    = 1
	accessChainExt  = 2
	accessChecksum  = 3
	maxAccessChecks = 256 // bounds the work one checkAccessList call can ask for
)

// Access is one message named in an access list.
type Access struct {
	ChainID     ChainID
	BlockNumber uint64
	Timestamp   uint64
	LogIndex    uint32
	Checksum    common.Hash
}

// ErrMalformedAccessList is returned for access-list entries that do not decode.
var ErrMalformedAccessList = errors.New("malformed interop access list")

// MessageChecksum is the checksum entry of the message id names, whose initiating log has
// payload hash payloadHash.
func MessageChecksum(id Identifier, payloadHash common.Hash) common.Hash {
	logHash := crypto.Keccak256Hash(id.Origin[:], payloadHash[:])
	packed := make([]byte, 12, 32)
	packed = binary.BigEndian.AppendUint64(packed, id.BlockNumber)
	packed = binary.BigEndian.AppendUint64(packed, id.Timestamp)
	packed = binary.BigEndian.AppendUint32(packed, id.LogIndex)
	idLogHash := crypto.Keccak256Hash(logHash[:], packed)
	var chain common.Hash
	binary.BigEndian.PutUint64(chain[24:], uint64(id.ChainID))
	out := crypto.Keccak256Hash(idLogHash[:], chain[:])
	out[0] = accessChecksum
	return out
}

// AccessListEntries are the CrossL2Inbox storage keys that name the message.
func AccessListEntries(id Identifier, payloadHash common.Hash) []common.Hash {
	var lookup common.Hash
	lookup[0] = accessLookup
	binary.BigEndian.PutUint64(lookup[4:12], uint64(id.ChainID))
	binary.BigEndian.PutUint64(lookup[12:20], id.BlockNumber)
	binary.BigEndian.PutUint64(lookup[20:28], id.Timestamp)
	binary.BigEndian.PutUint32(lookup[28:32], id.LogIndex)
	return []common.Hash{lookup, MessageChecksum(id, payloadHash)}
}

// ParseAccessList decodes every message an access list's CrossL2Inbox keys name. A chain
// ID that does not fit in 64 bits is an error: no chain of a dependency set has one.
func ParseAccessList(entries []common.Hash) ([]Access, error) {
	var out []Access
	for len(entries) > 0 {
		if len(out) == maxAccessChecks {
			return nil, fmt.Errorf("%w: more than %d messages", ErrMalformedAccessList, maxAccessChecks)
		}
		e := entries[0]
		entries = entries[1:]
		if e[0] != accessLookup || e[1] != 0 || e[2] != 0 || e[3] != 0 {
			return nil, fmt.Errorf("%w: entry %x is not a lookup", ErrMalformedAccessList, e)
		}
		a := Access{
			ChainID:     ChainID(binary.BigEndian.Uint64(e[4:12])),
			BlockNumber: binary.BigEndian.Uint64(e[12:20]),
			Timestamp:   binary.BigEndian.Uint64(e[20:28]),
			LogIndex:    binary.BigEndian.Uint32(e[28:32]),
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("%w: lookup without checksum", ErrMalformedAccessList)
		}
		e = entries[0]
		entries = entries[1:]
		if e[0] == accessChainExt {
			for _, b := range e[1:] {
				if b != 0 {
					return nil, fmt.Errorf("%w: chain ID above 64 bits", ErrMalformedAccessList)
				}
			}
			if len(entries) == 0 {
				return nil, fmt.Errorf("%w: lookup without checksum", ErrMalformedAccessList)
			}
			e = entries[0]
			entries = entries[1:]
		}
		if e[0] != accessChecksum {
			return nil, fmt.Errorf("%w: entry %x is not a checksum", ErrMalformedAccessList, e)
		}
		a.Checksum = e
		out = append(out, a)
	}
	return out, nil
}
