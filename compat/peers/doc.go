// Package peers runs the OP Stack's own rollup node and batcher (op-node and op-batcher
// v1.16.13, built from the module's packages by the commands in peers/cmd and configured
// through their own command-line flags) against opkit's in-process devnet: the dev L1
// with its beacon blob API and contract stand-ins, and op-geth L2 execution clients
// started from the devnet's genesis. Tests use them as reference peers: op-node deriving
// a chain opkit sequenced, op-batcher posting a chain opkit or op-node built, op-node
// sequencing a chain opkit derives. Each peer gets the flags a deployment would pass (no
// trusted L1 RPC) and runs as its own process, stopped by Close and killed with the test
// process if that dies first.
package peers
