package batcher

// SetBeforeSidecar installs a hook run at the start of every blob sidecar build, before
// Start: tests delay proof building per transaction with it.
func SetBeforeSidecar(b *Batcher, f func(txID string)) { b.beforeSidecar = f }
