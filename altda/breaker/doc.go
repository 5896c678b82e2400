// Package breaker is the circuit breaker that decides when the AltDA server stops taking
// writes (answering 503 so the batcher fails over to L1) and when it takes them again.
// It is a pure state machine over an injectable clock, so every transition is testable
// without waiting.
package breaker
