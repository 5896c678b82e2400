// Package derive turns L1 data into the payload attributes of safe L2 blocks, as the OP
// Stack's Holocene derivation does, and is the boundary between the rollup node's driver
// and that work. Derivation chains seven stages, each reading from the one before through
// a narrow interface and keeping its state apart from I/O, so every rule can be tested
// without a network: L1 traversal (by parent hash, applying system config updates), data
// retrieval (the batcher's data per L1 block), the frame queue (parse and Holocene prune),
// the channel assembler (one staging channel, size limit and timeout), the channel reader
// (bounded decompression, batch decoding), the batch stage (the Holocene batch rules and
// forced empty batches) and the attributes stage. Bad input from L1 is dropped by the
// rules, logged once and counted; it never stops derivation.
//
// The package also declares the Pipeline the driver steps, the error classes a step may
// end with (and what the driver does with each), an Idle pipeline for nodes that only
// sequence, and a Scripted pipeline that replays chosen outcomes for driver tests.
package derive
