// Package server is the AltDA HTTP server behind `opkit da-server`: the routes op-alt-da's
// DAClient speaks (PUT /put, /put/<commitment>, GET /get/<commitment>) over a primary
// store and any number of secondary stores, with the answers of specs issue #434.
//
// A write is answered 200 only once it is durable in the primary and every secondary. A
// secondary failure after a primary success is answered 201 and parked in the durable
// repair queue; a circuit breaker on the primary answers 503 with a retry delay while the
// primary is failing, so the batcher falls back to L1 instead of retrying into a dead
// store. Reads fall back through the secondaries, verify bytes against the commitment,
// are coalesced per commitment and served hot from a bounded cache.
package server
