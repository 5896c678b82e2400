// Package derivetest holds in-memory stand-ins for what the derivation pipeline reads (an
// L1 chain with receipts, a batcher data source, an L2 chain with system configs) and a
// metrics recorder, so pipeline stages and their callers can be tested without a network.
// Each can be told to fail its next calls, for fault-injection tests.
package derivetest
