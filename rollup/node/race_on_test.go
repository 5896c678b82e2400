//go:build race

package node_test

// raceDetector slows the interop devnet tests' clocks: the race detector makes every part
// several times slower, and a managed node derives one L1 block per round trip through its
// driver loop, which must keep up with L1.
const raceDetector = true
