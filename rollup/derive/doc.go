// Package derive is the boundary between the rollup node's driver and the derivation
// pipeline that turns L1 data into safe L2 blocks. It declares the Pipeline the driver
// steps, the error classes a step may end with (and what the driver does with each), an
// Idle pipeline for nodes that only sequence, and a Scripted pipeline that replays chosen
// outcomes so the driver's handling of every class can be tested. The real pipeline
// (frames, channels, batches from L1) plugs in behind the same interface.
package derive
