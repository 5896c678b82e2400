// Package driver is the rollup node's event loop: one goroutine that owns the node's
// progress and reacts, one event at a time, to L1 head/safe/finalized signals, unsafe L2
// payloads, derivation step requests and their delayed retries, the sequencer's timer,
// the unsafe-sync gap ticker, admin requests (start, stop and query the sequencer, force
// a pipeline reset) and requests for a consistent snapshot of the sync status. Serialising
// everything through one loop is what makes the status snapshots consistent and the
// admin calls race-free.
package driver
