package interop

import (
	"github.com/opkit/opkit/eth"
)

// Namespace is the JSON-RPC namespace every method of the protocol lives in.
const Namespace = "interop"

// EventsTopic is the argument of interop_subscribe that selects the node's event stream.
const EventsTopic = "events"

// ManagedEvent is what a managed node tells its supervisor. Several fields may be set at
// once (a derivation update carries its origin update); unset fields are omitted on the wire.
type ManagedEvent struct {
	// Reset says the node needs the supervisor to reset it; the text is the node's reason.
	Reset *string `json:"reset,omitempty"`
	// UnsafeBlock is a new local-unsafe L2 block.
	UnsafeBlock *eth.BlockRef `json:"unsafeBlock,omitempty"`
	// DerivationUpdate is a new local-safe L2 block with the L1 block it was derived from.
	DerivationUpdate *eth.DerivedBlockRefPair `json:"derivationUpdate,omitempty"`
	// ExhaustL1 says derivation consumed all L1 data up to Source and waits for the next
	// L1 block through interop_provideL1.
	ExhaustL1 *eth.DerivedBlockRefPair `json:"exhaustL1,omitempty"`
	// ReplaceBlock says an invalidated block was replaced.
	ReplaceBlock *eth.BlockReplacement `json:"replaceBlock,omitempty"`
	// DerivationOriginUpdate is the L1 block derivation traversed to; it comes together
	// with a DerivationUpdate.
	DerivationOriginUpdate *eth.BlockRef `json:"derivationOriginUpdate,omitempty"`
}

// IsEmpty reports whether no field is set.
func (e *ManagedEvent) IsEmpty() bool {
	return e == nil || (e.Reset == nil && e.UnsafeBlock == nil && e.DerivationUpdate == nil &&
		e.ExhaustL1 == nil && e.ReplaceBlock == nil && e.DerivationOriginUpdate == nil)
}

// EventEntry is the payload of an interop_subscription notification. The server sends
// Data=nil with Close=true when it ends the subscription (a client started pulling).
type EventEntry struct {
	Data  *ManagedEvent `json:"data"`
	Close bool          `json:"close,omitempty"`
}
