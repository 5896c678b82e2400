// Package batcher holds the compatibility tests of opkit batcher against the OP Stack
// v1.16.13: op-node, as a verifier, derives what opkit batcher posts in each DA mode to
// the sequencer's blocks and output roots.
package batcher
