// Package altda checks opkit's AltDA server and client against the OP Stack's op-alt-da:
// the stock DAClient (as op-batcher and op-node use it) against opkit's server, opkit's
// client against op-alt-da's reference server, and a side-by-side benchmark of both
// servers driven by the stock client.
package altda
