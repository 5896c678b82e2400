// Package reset finds where derivation restarts after a node start or an L1 reorg. It
// walks the execution client's chain back from the unsafe head, comparing each block's
// L1 origin with the canonical L1 chain: the new unsafe head is the highest block whose
// origin is canonical (or not yet visible on L1), and the new safe head is the parent of
// the first block at or below the old safe head that starts an epoch whose origin lies a
// full sequencing window below the highest canonical origin, so that every batch that
// could still change the blocks above it is read again. The finalized head is never
// crossed: reaching it ends the walk with safe = finalized.
package reset
