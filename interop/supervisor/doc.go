// Package supervisor is opkit's interop supervisor. It dials the managed nodes of every
// chain in a dependency set, indexes their blocks' logs and executing messages, records
// which L1 block each local-safe block was derived from, decides cross-unsafe, cross-safe
// and finalized heads, and tells the nodes: promotions (retried until acknowledged and
// re-asserted periodically), the next L1 block after a node exhausted L1 (kept pending
// until L1 has it), invalidation of blocks with invalid executing messages, and resets
// after bisecting for the last block both sides agree on. State lives in Pebble so that a
// restart resumes where it stopped.
package supervisor
