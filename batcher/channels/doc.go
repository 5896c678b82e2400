// Package channels is the batcher's channel manager: it queues the unsafe L2 blocks
// above the safe head, fills channels with them, closes each channel when it is full or
// one of its deadlines comes, cuts the closed channel into frames and hands the frames
// out as transaction data, one L1 transaction at a time.
//
// A channel closes when the codec reports it full, when the L1 head reaches
// max-channel-duration blocks past the origin of the last submitted channel, when the
// oldest L1 origin of its blocks plus the sequencing window (less the safety margin) is
// reached, or when its first frame was included and the channel timeout (less the
// margin) has passed. Transaction outcomes come back through TxConfirmed and TxFailed: a
// failed transaction rewinds its channel to resend the same frames; a channel whose
// frames landed further apart than the channel timeout is dropped, with every newer
// channel, and its blocks are put back to be sent in new channels. The manager does no
// I/O and is driven from one goroutine.
package channels
