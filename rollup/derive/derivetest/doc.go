// Package derivetest holds in-memory stand-ins for what the derivation pipeline reads (an
// L1 chain with receipts, a batcher data source, an L2 chain with system configs) and a
// metrics recorder, so pipeline stages and their callers can be tested without a network.
// Each can be told to fail its next calls, for fault-injection tests. For end-to-end tests
// against a real sequencer it also encodes blocks into frames as a batcher does and
// compares derived attributes with the sequencer's blocks.
package derivetest
