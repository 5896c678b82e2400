// Package memchain is an in-memory L2 chain that implements managed.Backend: blocks with
// receipts and logs, the heads a supervisor promotes, resets, invalidation with a
// deposits-only replacement, and a record of the L1 blocks it was given. It stands in for a
// rollup node where the protocol is what is under test (interop/managed, interop/supervisor
// and the compat tests), so blocks are made on demand instead of by an execution client.
package memchain
