package devnet

import (
	"encoding/binary"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/interop"
)

// validateMessageSelector is the 4-byte selector of the CrossL2Inbox's
// validateMessage((address,uint256,uint256,uint256,uint256),bytes32).
var validateMessageSelector = crypto.Keccak256([]byte("validateMessage((address,uint256,uint256,uint256,uint256),bytes32)"))[:4]

// CrossL2InboxCode is the runtime code of the interop devnet's CrossL2Inbox: a stand-in
// for the OP Stack's contract that takes the same validateMessage call and emits the same
// ExecutingMessage event, so that plain transactions execute messages and a supervisor
// sees them in receipts. It checks nothing itself: judging the message is the
// supervisor's job. A call with any other selector or length reverts.
func CrossL2InboxCode() []byte {
	topic := interop.ExecutingMessageTopic
	code := []byte{
		0x36,       // CALLDATASIZE
		0x60, 0xc4, // PUSH1 196: selector, identifier (5 words), payload hash
		0x14,             // EQ
		0x60, 0x00, 0x35, // CALLDATALOAD(0)
		0x60, 0xe0, 0x1c, // SHR 224: the selector
		0x63, validateMessageSelector[0], validateMessageSelector[1], validateMessageSelector[2], validateMessageSelector[3],
		0x14,       // EQ
		0x16,       // AND
		0x60, 0x18, // PUSH1 24: the JUMPDEST below
		0x57,                   // JUMPI
		0x60, 0x00, 0x80, 0xfd, // REVERT(0, 0)
		0x5b,                                     // JUMPDEST
		0x60, 0xa0, 0x60, 0x04, 0x60, 0x00, 0x37, // CALLDATACOPY(0, 4, 160): the identifier
		0x60, 0xa4, 0x35, // CALLDATALOAD(164): the payload hash, topic 1
		0x7f, // PUSH32 the event's topic 0
	}
	code = append(code, topic[:]...)
	code = append(code,
		0x60, 0xa0, 0x60, 0x00, 0xa2, // LOG2(0, 160, topic0, payload hash)
		0x00, // STOP
	)
	return code
}

// ValidateMessageCalldata is the calldata of a CrossL2Inbox.validateMessage call that
// executes the message id names with payload hash payloadHash (interop.PayloadHash of the
// initiating log).
func ValidateMessageCalldata(id interop.Identifier, payloadHash common.Hash) []byte {
	data := make([]byte, 4+6*32)
	copy(data, validateMessageSelector)
	w := data[4:]
	copy(w[12:32], id.Origin[:])
	binary.BigEndian.PutUint64(w[32+24:64], id.BlockNumber)
	binary.BigEndian.PutUint32(w[64+28:96], id.LogIndex)
	binary.BigEndian.PutUint64(w[96+24:128], id.Timestamp)
	binary.BigEndian.PutUint64(w[128+24:160], uint64(id.ChainID))
	copy(w[160:], payloadHash[:])
	return data
}
