// Package l1test starts the in-process dev L1 for interop tests in a state they can rely
// on: running, with its first block sealed. The first seal of a fresh dev L1 can wait
// forever inside op-geth (its payload builder may finish before the seal starts waiting
// for it), so seals here have a deadline, and a first seal that misses it is retried on a
// new L1.
package l1test
