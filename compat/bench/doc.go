// Package bench holds the side-by-side benchmarks of opkit against the OP Stack's own
// components (v1.16.13) that need a whole chain: derivation catch-up (an opkit verifier
// and op-node over the same prepared dev L1) and batch submission (opkit batcher and
// op-batcher over the same L2 chain). Each chain is built by a sequencing opkit devnet
// under a fake clock that moves one L2 block time per block, with a seeded load of
// transactions in every block, and the dev L1 sealed in step with the L2's chain time,
// so that runs repeat the same blocks. The systems under test run as child processes,
// so that their own CPU time can be read from /proc apart from the in-process op-geth
// clients. Nothing here runs without -bench: `make bench-derive` and `make bench-batcher`.
package bench
