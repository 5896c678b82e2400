// Package devnet starts real execution clients inside the opkit process: an op-geth dev L1
// that seals blocks on demand and on a period, for opkit's devnet command and for every
// system's tests, which use it as their L1 and as a reference chain.
//
// The clients are op-geth itself (node, eth service, tracers, RPC), not a simulation of
// it, so whatever a test sees over JSON-RPC is what a real deployment would see.
package devnet
