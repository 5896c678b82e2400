// Package replay re-executes a block statelessly, the way a fault-proof program does:
// state is read trie node by trie node from a key-value source keyed by hash, and the
// computed state root and receipts root are checked against the block header. The
// collector replays each block over its execution witness to learn the trie nodes the
// block creates; the verifier replays blocks over the collector's getter API alone.
package replay
