package interop

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/rpc"
)

// JSON-RPC error codes of the protocol. The first four are what the OP Stack's node and
// supervisor speak; CodeNotFound is opkit's own so that "not found" survives the trip over
// RPC without relying on message text.
const (
	// CodeOutOfEvents answers interop_pullEvent when the queue is empty.
	CodeOutOfEvents = -39001
	// CodeResetTargetNotFound answers interop_reset when a target block does not exist on
	// the node. It shares its value with CodeOutOfEvents on the wire, as shipped.
	CodeResetTargetNotFound = -39001
	// CodeConflictingBlock answers interop_reset when the node holds a different block at a
	// target's height; the error data is the node's L2BlockRef at that height.
	CodeConflictingBlock = -39002
	// CodeInteropInactive answers interop_anchorPoint when interop is not active at genesis.
	CodeInteropInactive = -39003
	// CodeNotFound answers a lookup (block by number, hash or timestamp, receipts, output)
	// for something the node does not have. The message always contains "block not found",
	// the text the OP Stack's clients map to ethereum.NotFound.
	CodeNotFound = -39010
	// CodeInvalidParams is JSON-RPC's own code for a malformed parameter.
	CodeInvalidParams = -32602
	// CodeInternal is JSON-RPC's own code for a server-side failure.
	CodeInternal = -32603
)

// ErrNotFound is returned by node backends (and by the supervisor's client after decoding
// an RPC error) when a block or its data does not exist.
var ErrNotFound = errors.New("block not found")

// Error is a JSON-RPC error with a code and optional data, as go-ethereum's RPC server
// sends them (it implements rpc.Error and rpc.DataError).
type Error struct {
	Code    int
	Message string
	Data    any
}

func (e *Error) Error() string  { return e.Message }
func (e *Error) ErrorCode() int { return e.Code }
func (e *Error) ErrorData() any { return e.Data }

// NotFoundError builds the error a node answers for a missing block; what names the lookup.
func NotFoundError(what string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s: %s", ErrNotFound.Error(), what)}
}

// ErrorCode returns the JSON-RPC code carried by err, or 0 when there is none.
func ErrorCode(err error) int {
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) {
		return rpcErr.ErrorCode()
	}
	return 0
}

// IsNotFound reports whether err means the peer does not have the block asked for: the
// dedicated code, ErrNotFound itself, or the texts older peers use for it.
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotFound) || ErrorCode(err) == CodeNotFound {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "block not found") || strings.Contains(msg, "header not found") ||
		strings.Contains(msg, "unknown block") || strings.Contains(msg, "not found")
}
