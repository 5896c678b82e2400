// Package peers runs the OP Stack's own rollup node, batcher and supervisor (op-node,
// op-batcher and op-supervisor v1.16.13, built from the module's packages by the commands
// in peers/cmd and configured through their own command-line flags) against opkit's
// in-process devnet: the dev L1 with its beacon blob API and contract stand-ins, and
// op-geth L2 execution clients started from the devnet's genesis. Tests use them as
// reference peers: op-node deriving a chain opkit sequenced, op-batcher posting a chain
// opkit or op-node built, op-node sequencing a chain opkit derives, op-node in managed
// mode (--harness.managed) under a supervisor, op-supervisor managing opkit nodes. Each
// peer gets the flags a deployment would pass (no trusted L1 RPC) and runs as its own
// process, stopped by Close and killed with the test process if that dies first.
package peers
