// Package l1test starts the in-process dev L1 for interop tests in a state they can rely
// on: running, with its first block sealed, closed when the test ends. Seals made through
// it have a deadline, so a seal that never finishes fails the test with a clear message
// instead of hanging the suite until its global timeout.
package l1test
