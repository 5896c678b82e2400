// Package clock gives the rollup node's timing decisions (when to build the next block,
// when to retry a failed derivation step) one source of time that tests can replace with
// a manually advanced fake, and the exponential backoff every retry loop shares.
package clock
