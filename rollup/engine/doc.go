// Package engine drives an OP Stack execution client over the Engine API: it is the
// rollup node's only writer of L2 chain state. It keeps the forkchoice state (unsafe, safe
// and finalized heads), builds blocks from payload attributes (forkchoiceUpdated with
// attributes, getPayload, newPayload, forkchoiceUpdated), inserts unsafe payloads received
// from elsewhere, and sorts every failure into a class the caller can act on: the engine
// is syncing, the payload or attributes are invalid, or the call failed in transit and may
// be retried.
package engine
