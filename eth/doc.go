// Package eth holds the chain types every opkit system shares: block identifiers and
// references for L1 and L2, the pairs and replacements the interop protocol speaks, the
// version-0 output root and the rollup node's sync status.
//
// The JSON encoding of each type is the one the OP Stack's own components put on the
// wire (plain decimal numbers, 0x-hex hashes, the lowercase "l1origin" field), so values
// decoded here can be passed to and from real op-node and op-supervisor peers unchanged.
package eth
