// Package node assembles a rollup node from its parts: an L1 watcher that feeds the
// driver L1 head, safe and finalized signals, the engine controller on the L2 execution
// client, the sequencer, the derivation pipeline boundary, the driver's event loop, and
// the JSON-RPC server (optimism_* and admin_* with op-node's method names and shapes)
// plus /health and /metrics. The supervisor's managed mode will attach to the same node
// through Driver and Engine, which are exposed for it.
package node
