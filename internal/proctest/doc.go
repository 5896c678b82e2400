// Package proctest builds the opkit binary and runs its commands as child processes for
// tests that must treat a part as an operator's machine would: kill it with SIGKILL (no
// deferred close, no flush), start it again on the same data directory, and read what it
// logged. It is for tests only; the helpers fail the test they are given.
package proctest
