// Package dasource finds the batcher's data in an L1 block for derivation: the calldata
// of batcher transactions to the batch inbox, the blobs of blob transactions (fetched
// from an L1 beacon node and checked against their versioned hashes), and, on an AltDA
// chain, the preimages of posted commitments (fetched from a DA server). Its Source is
// the derivation pipeline's data source; which transactions count and what each failure
// means for derivation (skip, retry, reset or stop) follow op-node v1.16.13.
package dasource
