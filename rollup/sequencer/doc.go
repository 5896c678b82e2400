// Package sequencer produces L2 blocks on a schedule: it picks each block's L1 origin
// (respecting the confirmation depth, the sequencer drift limit and the next origin's
// timestamp), builds the payload attributes, and asks the engine to build, seal and insert
// the block. It is driven by the driver's event loop, which asks when the next action is
// due and then runs it; failures of the execution client are retried with backoff inside
// the sequencer, so only unrecoverable errors reach the driver.
package sequencer
