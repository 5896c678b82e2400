// Package collector_test runs the OP Stack's fault-proof program, op-program v1.16.13 (its
// host with the client in-process, natively), against opkit's collector: a claim about an
// L2 block whose state a path-scheme execution client has long pruned is checked with the
// collector as the program's only L2 state source, from batches posted to the dev L1.
package collector_test
