// Package repair is the durable queue of secondary-store writes that failed after the
// primary write succeeded (the server's 201 partial success). Each entry holds the target
// store, the commitment and the preimage itself, in a synced Pebble database in the
// datadir, so a pending repair survives a restart even when the primary is not durable. A
// background loop retries entries with exponential backoff until the secondary takes
// them; a client resending the same body completes an entry at once.
package repair
