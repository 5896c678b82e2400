// Package derive compares opkit's derivation pipeline with op-node's own (v1.16.13): both
// read the same in-memory L1 chain, batches encoded with op-node's code, and each builds
// on its own L2 chain from the attributes it derives; the attributes must agree one for
// one, including for crafted bad input (foreign and garbage data, dropped and timed-out
// channels, future, past and wrong-epoch batches, forced empty blocks). A devnet test
// also derives a real sequencer's chain posted in blobs, fetched from the dev L1's beacon
// API (here, out of the main module's race-detector run, which makes KZG proofs slow).
package derive
