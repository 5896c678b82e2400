// Package batch holds the wire codecs that carry L2 blocks to L1 and back: batcher
// transaction frames with the derivation version byte, EIP-4844 blob packing, channel
// bodies compressed with zlib or brotli, singular batches, span batches with their
// transaction columns, and the channel builders a batcher fills from L2 blocks. It does
// no network or disk I/O so derivation and the batcher share one implementation whose
// accept/reject rules can be checked byte for byte against op-node's; every decoder is
// bounded by the protocol's size limits before it allocates.
package batch
