// Package store keeps the collector's preimages (trie nodes and contract code, keyed by
// their keccak256 hash) and the retained-block index in Pebble, and garbage-collects them
// by reference counting: every retained block holds one reference to each preimage it
// needs, and a preimage is deleted in the same batch that drops its last reference. A
// block enters and leaves the store in one atomic batch, so a crash never leaves a
// retained block with a missing preimage or a preimage that nothing references.
package store
