// Package txmgr sends the batcher's L1 transactions and sees each one to a confirmation
// depth.
//
// A Manager hands out nonces in order, starting from the account's latest (mined) nonce,
// so that transactions a previous run left in the mempool are replaced rather than
// waited for. It prices each transaction from the L1's current tip and base fee (and blob
// base fee for blob transactions), republishes it with bumped fees when it has not been
// mined within the resubmission timeout (at least 10% more on the tip and fee cap, 100%
// on every cap of a blob transaction, which is what the execution client's pools require
// of a replacement), and returns its receipt only once it is the given number of blocks
// deep and still canonical. A receipt that disappears (an L1 reorg) puts the transaction
// back to waiting. A nonce taken by some other transaction fails the send with
// ErrNonceConsumed and makes the next send read the nonce from the chain again, which is
// also how a gap left by a send that gave up is closed. Every L1 call has a deadline.
package txmgr
