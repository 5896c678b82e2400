// Package batch checks opkit's rollup/batch codecs against the OP Stack's own (op-node's
// derive package and op-service's blob packing, monorepo v1.16.13): each decoder is
// fuzzed against its op-node counterpart on the same bytes, each encoder's output is
// decoded by op-node, and opkit's channel builders are compared byte for byte with
// op-batcher's.
package batch
