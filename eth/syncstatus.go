package eth

// SyncStatus is a consistent snapshot of a rollup node's view of L1 and L2. Fields that are
// not yet known are zero. The JSON names are op-node's optimism_syncStatus names.
type SyncStatus struct {
	// CurrentL1 is the L1 block derivation last idled at.
	CurrentL1 L1BlockRef `json:"current_l1"`
	// CurrentL1Finalized is kept for wire compatibility; it equals FinalizedL1.
	CurrentL1Finalized L1BlockRef `json:"current_l1_finalized"`
	HeadL1             L1BlockRef `json:"head_l1"`
	SafeL1             L1BlockRef `json:"safe_l1"`
	FinalizedL1        L1BlockRef `json:"finalized_l1"`
	// UnsafeL2 is the tip of the L2 chain, not yet derived from L1.
	UnsafeL2 L2BlockRef `json:"unsafe_l2"`
	// SafeL2 was derived from L1 (cross-safe after interop).
	SafeL2 L2BlockRef `json:"safe_l2"`
	// FinalizedL2 was derived from finalized L1 data only.
	FinalizedL2 L2BlockRef `json:"finalized_l2"`
	// PendingSafeL2 was processed from a batch but is not yet consolidated into SafeL2.
	PendingSafeL2 L2BlockRef `json:"pending_safe_l2"`
	// CrossUnsafeL2 is unsafe with its cross-L2 dependencies verified.
	CrossUnsafeL2 L2BlockRef `json:"cross_unsafe_l2"`
	// LocalSafeL2 is derived from L1 without cross-L2 verification.
	LocalSafeL2 L2BlockRef `json:"local_safe_l2"`
}
