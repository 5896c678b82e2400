// Package managed is the node side of the supervisor ↔ managed-node protocol. A rollup node
// plugs in through the Backend interface (its engine heads, block and receipt lookups,
// outputs, reset and promotion hooks, and its L1 feed), reports what happens on its chain
// through the Server's event methods, and the Server does the rest: one authenticated port
// for HTTP and websocket under the "interop" namespace, the event subscription and the
// pull queue, deduplication of repeated events, and the protocol's error codes.
package managed
