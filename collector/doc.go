// Package collector follows an execution client's head block by block while the
// client still holds the parent state, keeps every preimage needed to execute each
// block of a rolling window and to read the state it touched, checks each block by
// replaying it, and serves the preimages through the getter API a fault-proof host or
// output proposer uses in place of an archive node (debug_dbGet,
// debug_executionWitness, eth_getProof, collector_status), forwarding the chain-data
// calls it does not answer itself to the execution client.
package collector
