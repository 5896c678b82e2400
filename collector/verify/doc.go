// Package verify re-executes a range of blocks statelessly against a collector's getter
// API alone, the way a fault-proof program does: every trie node and code comes from
// debug_dbGet and is checked against its hash, headers come from debug_getRawHeader,
// and each block's state root and receipts root must match its header. It never reads
// the execution client's state.
package verify
