// Package rollup holds what every part of the rollup node agrees on: the chain's rollup
// configuration in op-node's rollup.json format with its fork schedule, the system
// configuration carried by L2 blocks, and the L1-attributes deposit transaction that opens
// every L2 block. It performs no I/O beyond reading and writing the config file, so the
// encodings can be checked byte for byte against the OP Stack's own.
package rollup
