// Package batcher posts an OP Stack chain's unsafe L2 blocks to L1 so that verifiers can
// derive them.
//
// It polls the rollup node's sync status, loads the blocks above the safe head from the
// L2 execution client (checking each one's parent, so an L2 reorg clears the queue and
// loading starts again from the safe head), builds span-batch channels with the batch
// codec (package channels), and sends their frames through the transaction manager
// (package txmgr) as calldata, as blobs, by whichever of the two costs less at the time
// (auto), or through an AltDA server whose commitments go to L1 as calldata. In AltDA
// mode each channel follows the failover state machine of package dafailover. Because
// every decision starts from the rollup node's safe head, a restarted batcher resumes
// where the chain's safe head is; with WaitNodeSync it first waits until the node has
// read past its last batch transaction, so blocks already on L1 are not sent again.
package batcher
