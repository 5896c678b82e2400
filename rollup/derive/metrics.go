package derive

// Why a frame, a channel or a batcher data item was dropped; the values label counters.
const (
	// Data items (one batcher transaction's data, or one blob).
	DropDataVersion   = "bad_version" // empty or not derivation version 0
	DropDataMalformed = "malformed"   // the frames did not parse: the whole item goes
	// Frames.
	DropFramePruned     = "pruned"        // Holocene frame-queue prune of a sequence that cannot form a channel
	DropFrameNoChannel  = "no_channel"    // a non-first frame with no staging channel
	DropFrameOtherID    = "other_channel" // a non-first frame of another channel than the staging one
	DropFrameDuplicate  = "duplicate"     // a frame number already held
	DropFrameOutOfOrder = "out_of_order"  // a gap in the frame numbers
	// Channels.
	DropChannelTimeout     = "timeout"         // not completed within the channel timeout
	DropChannelTooBig      = "too_big"         // frames over the per-channel byte limit
	DropChannelReplaced    = "replaced"        // a new frame 0 arrived before the last frame
	DropChannelCompression = "bad_compression" // unknown compression or a corrupt stream header
	DropChannelRead        = "read_error"      // a batch in the body failed to decode: the rest goes
	DropChannelOutputLimit = "output_limit"    // the body decompresses past the limit (a zip bomb): the rest goes
	DropChannelFlushed     = "flushed"         // an invalid batch or payload flushed the channel
)

// Batch verdicts, as the batch stage decides them.
const (
	VerdictAccept      = "accept"
	VerdictDrop        = "drop"
	VerdictPast        = "past"
	VerdictUndecided   = "undecided"
	VerdictForcedEmpty = "forced_empty" // no batch in the sequence window: a deposits-only block
)

// Batch kinds as counted.
const (
	KindSingular = "singular"
	KindSpan     = "span"
	// KindSpanBlock counts the checks of the blocks of an accepted span batch.
	KindSpanBlock = "span_block"
)

// Metrics counts what derivation dropped and decided. Implementations must be safe for
// use from the one goroutine that steps derivation; they need no locking beyond that.
type Metrics interface {
	// DataDropped counts a batcher data item dropped whole.
	DataDropped(reason string)
	// FrameDropped counts one dropped frame.
	FrameDropped(reason string)
	// ChannelDropped counts one channel dropped before all its batches were read.
	ChannelDropped(reason string)
	// BatchVerdict counts one batch of kind (KindSingular or KindSpan) with a verdict.
	BatchVerdict(kind, verdict string)
	// PipelineReset counts a reset of derivation.
	PipelineReset()
}

// NoMetrics counts nothing.
type NoMetrics struct{}

func (NoMetrics) DataDropped(string)          {}
func (NoMetrics) FrameDropped(string)         {}
func (NoMetrics) ChannelDropped(string)       {}
func (NoMetrics) BatchVerdict(string, string) {}
func (NoMetrics) PipelineReset()              {}
