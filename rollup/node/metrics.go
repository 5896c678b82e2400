package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/opkit/opkit/eth"
)

// Metrics is the node's Prometheus instrumentation, on its own registry so several nodes
// can live in one process (the devnet, tests).
type Metrics struct {
	Registry *prometheus.Registry

	heads          *prometheus.GaugeVec
	sequenced      prometheus.Counter
	buildSeconds   prometheus.Histogram
	sequencerErrs  *prometheus.CounterVec
	sequencerReset prometheus.Counter
	steps          *prometheus.CounterVec
	pipelineResets prometheus.Counter
	safeLagPaused  prometheus.Gauge
	unsafePayloads *prometheus.CounterVec
	derived        *prometheus.CounterVec
	invalid        prometheus.Counter
	dropped        *prometheus.CounterVec
	verdicts       *prometheus.CounterVec
}

// NewMetrics registers the node's metrics and the Go runtime's.
func NewMetrics() *Metrics {
	const ns = "opkit_node"
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		heads: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "head_number",
			Help: "Block number of each head the node tracks"}, []string{"head"}),
		sequenced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "sequenced_blocks_total",
			Help: "L2 blocks built and inserted by this node's sequencer"}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "block_build_seconds",
			Help: "Time from starting a block to sealing it", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		sequencerErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sequencer_errors_total",
			Help: "Failed sequencer actions by class"}, []string{"class"}),
		sequencerReset: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "sequencer_l1_reorg_rewinds_total",
			Help: "Unsafe chain rewinds after an L1 reorg below the sequencer's origin"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "derivation_steps_total",
			Help: "Derivation steps by outcome"}, []string{"outcome"}),
		pipelineResets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "pipeline_resets_total",
			Help: "Derivation pipeline resets"}),
		safeLagPaused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "sequencer_safe_lag_paused",
			Help: "1 while the sequencer waits for the safe head to catch up"}),
		unsafePayloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "unsafe_payloads_total",
			Help: "Unsafe payloads received, by result (inserted, queued, dropped)"}, []string{"result"}),
		derived: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "derived_blocks_total",
			Help: "Derived blocks by how they reached the chain (consolidated, appended, reorged)"}, []string{"outcome"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "derived_invalid_payloads_total",
			Help: "Derived payloads the engine refused"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "derivation_dropped_total",
			Help: "Batcher data items, frames and channels dropped by derivation, by kind and reason"}, []string{"kind", "reason"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "derivation_batches_total",
			Help: "Batches checked by derivation, by kind and verdict"}, []string{"kind", "verdict"}),
	}
	m.Registry.MustRegister(m.heads, m.sequenced, m.buildSeconds, m.sequencerErrs, m.sequencerReset,
		m.steps, m.pipelineResets, m.safeLagPaused, m.unsafePayloads, m.derived, m.invalid, m.dropped, m.verdicts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) RecordSequencedBlock(_ eth.L2BlockRef, took time.Duration) {
	m.sequenced.Inc()
	m.buildSeconds.Observe(took.Seconds())
}

func (m *Metrics) RecordSequencerError(class string) { m.sequencerErrs.WithLabelValues(class).Inc() }
func (m *Metrics) RecordSequencerReset()             { m.sequencerReset.Inc() }
func (m *Metrics) RecordStep(outcome string)         { m.steps.WithLabelValues(outcome).Inc() }
func (m *Metrics) RecordPipelineReset()              { m.pipelineResets.Inc() }

func (m *Metrics) SetSafeLagPaused(paused bool) {
	v := 0.0
	if paused {
		v = 1
	}
	m.safeLagPaused.Set(v)
}

func (m *Metrics) RecordUnsafePayload(result string) { m.unsafePayloads.WithLabelValues(result).Inc() }
func (m *Metrics) RecordDerived(outcome string)      { m.derived.WithLabelValues(outcome).Inc() }
func (m *Metrics) RecordInvalidPayload()             { m.invalid.Inc() }

// The derivation stages' counters.
func (m *Metrics) DataDropped(reason string)    { m.dropped.WithLabelValues("data", reason).Inc() }
func (m *Metrics) FrameDropped(reason string)   { m.dropped.WithLabelValues("frame", reason).Inc() }
func (m *Metrics) ChannelDropped(reason string) { m.dropped.WithLabelValues("channel", reason).Inc() }
func (m *Metrics) BatchVerdict(kind, verdict string) {
	m.verdicts.WithLabelValues(kind, verdict).Inc()
}

// PipelineReset is counted by the driver (pipeline_resets_total); derivation's own count
// of the same event is not kept twice.
func (m *Metrics) PipelineReset() {}

// RecordStatus publishes the heads of a sync status.
func (m *Metrics) RecordStatus(st *eth.SyncStatus) {
	m.heads.WithLabelValues("l1_head").Set(float64(st.HeadL1.Number))
	m.heads.WithLabelValues("l1_safe").Set(float64(st.SafeL1.Number))
	m.heads.WithLabelValues("l1_finalized").Set(float64(st.FinalizedL1.Number))
	m.heads.WithLabelValues("l2_unsafe").Set(float64(st.UnsafeL2.Number))
	m.heads.WithLabelValues("l2_safe").Set(float64(st.SafeL2.Number))
	m.heads.WithLabelValues("l2_finalized").Set(float64(st.FinalizedL2.Number))
	m.heads.WithLabelValues("l2_pending_safe").Set(float64(st.PendingSafeL2.Number))
	m.heads.WithLabelValues("l1_current").Set(float64(st.CurrentL1.Number))
}
