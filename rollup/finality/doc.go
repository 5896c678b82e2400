// Package finality decides which L2 blocks are finalized. An L2 block is final once
// every L1 block its data came from is final: the tracker remembers, for each of the
// last 129 L1 blocks derivation read (four 32-block epochs and one more, enough to span
// the distance between L1's head and its finalized block), the newest safe L2 block
// derived by then. When L1 reports a new finalized block, the highest remembered L2
// block derived from L1 at or below it becomes the candidate, and it is finalized after
// checking that both the finalized L1 block and the one the candidate was derived from
// are still canonical (if not, derivation must reset).
//
// The package also keeps the node's record of which safe head each L1 block produced,
// the answer to optimism_safeHeadAtL1Block.
package finality
