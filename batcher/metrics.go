package batcher

import (
	"math/big"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/batcher/channels"
)

// metrics are the batcher's Prometheus series; each is updated where the event happens.
type metrics struct {
	channelsOpened      *prometheus.CounterVec
	channelsClosed      *prometheus.CounterVec
	channelsInvalidated *prometheus.CounterVec
	openChannels        prometheus.Gauge
	inputBytes          prometheus.Counter
	outputBytes         prometheus.Counter
	comprRatio          prometheus.Gauge
	blocksLoaded        prometheus.Counter
	pendingBlocks       prometheus.Gauge
	pendingBytes        prometheus.Gauge
	resets              *prometheus.CounterVec
	txData              *prometheus.CounterVec
	txsConfirmed        *prometheus.CounterVec
	txsFailed           prometheus.Counter
	txsPublished        *prometheus.CounterVec
	pendingTxs          prometheus.Gauge
	feesPaid            *prometheus.CounterVec
	altdaPuts           *prometheus.CounterVec
	failovers           *prometheus.CounterVec
	partialResends      prometheus.Counter
	sidecarReuses       prometheus.Counter
	partialCommitted    prometheus.Counter
	altdaAvoided        prometheus.Gauge
	throttleIntensity   prometheus.Gauge
	safeL2, unsafeL2    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "opkit_batcher"
	m := &metrics{
		channelsOpened:      prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "channels_opened_total", Help: "Channels opened, by the DA they were planned for."}, []string{"da"}),
		channelsClosed:      prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "channels_closed_total", Help: "Channels closed, by DA and reason (full, duration, seq_window, channel_timeout, flush)."}, []string{"da", "reason"}),
		channelsInvalidated: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "channels_invalidated_total", Help: "Channels dropped and rebuilt, by reason."}, []string{"reason"}),
		openChannels:        prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "channels_open", Help: "Channels opened and not yet closed."}),
		inputBytes:          prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "channel_input_bytes_total", Help: "Uncompressed batch bytes put into closed channels."}),
		outputBytes:         prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "channel_output_bytes_total", Help: "Framed bytes that closed channels produced."}),
		comprRatio:          prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "channel_compression_ratio", Help: "Output over input bytes of the last closed channel; 0 before the first."}),
		blocksLoaded:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "l2_blocks_loaded_total", Help: "L2 blocks loaded from the execution client."}),
		pendingBlocks:       prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "pending_blocks", Help: "Loaded L2 blocks not yet on L1 in full: not in a channel, in the open channel, or in a channel with a frame unsent or unconfirmed."}),
		pendingBytes:        prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "pending_block_bytes", Help: "Transaction bytes (deposits excluded) of the pending blocks (see opkit_batcher_pending_blocks); the throttle acts on it."}),
		resets:              prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "state_resets_total", Help: "Times the queued state was dropped and loaded again from the safe head, by reason."}, []string{"reason"}),
		txData:              prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tx_data_bytes_total", Help: "Bytes handed to L1 or the DA server, by DA."}, []string{"da"}),
		txsConfirmed:        prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "txs_confirmed_total", Help: "Batch transactions confirmed at depth, by DA."}, []string{"da"}),
		txsFailed:           prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "txs_failed_total", Help: "Batch transactions that failed and were requeued."}),
		txsPublished:        prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "txs_published_total", Help: "Transactions handed to the L1 pool; replacement=true for fee bumps."}, []string{"replacement"}),
		pendingTxs:          prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "pending_txs", Help: "Batch transactions sent and not yet confirmed or failed."}),
		feesPaid:            prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "fees_paid_wei_total", Help: "Fees paid by confirmed batch transactions, in wei: execution gas and blob gas."}, []string{"kind"}),
		altdaPuts:           prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "altda_puts_total", Help: "PUTs to the AltDA server, by outcome."}, []string{"outcome"}),
		failovers:           prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "altda_failovers_total", Help: "Channels moved from AltDA to Ethereum DA, by reason."}, []string{"reason"}),
		partialResends:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "altda_partial_resends_total", Help: "Bodies sent again after a 201 partial success."}),
		sidecarReuses:       prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "blob_sidecar_reuses_total", Help: "Blob transactions sent again with the sidecar (commitments and proofs) of an earlier send of the same frames."}),
		partialCommitted:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "altda_partial_committed_total", Help: "Commitments posted after the partial-retry bound, still only partially stored."}),
		altdaAvoided:        prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "altda_avoided", Help: "1 while new channels avoid AltDA after a 503 or repeated errors."}),
		throttleIntensity:   prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "throttle_intensity", Help: "Throttle intensity asked of the block builder, 0..1."}),
		safeL2:              prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "safe_l2", Help: "Safe L2 block number in the last sync status."}),
		unsafeL2:            prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "unsafe_l2", Help: "Unsafe L2 block number in the last sync status."}),
	}
	reg.MustRegister(m.channelsOpened, m.channelsClosed, m.channelsInvalidated, m.openChannels, m.inputBytes, m.outputBytes,
		m.comprRatio, m.blocksLoaded, m.pendingBlocks, m.pendingBytes, m.resets, m.txData, m.txsConfirmed, m.txsFailed,
		m.txsPublished, m.pendingTxs, m.feesPaid, m.altdaPuts, m.failovers, m.partialResends, m.sidecarReuses, m.partialCommitted,
		m.altdaAvoided, m.throttleIntensity, m.safeL2, m.unsafeL2)
	return m
}

// channels.Events

func (m *metrics) ChannelOpened(p channels.Plan) {
	m.channelsOpened.WithLabelValues(p.DA.String()).Inc()
}

func (m *metrics) ChannelClosed(p channels.Plan, reason string, _, in, out int) {
	m.channelsClosed.WithLabelValues(p.DA.String(), reason).Inc()
	m.inputBytes.Add(float64(in))
	m.outputBytes.Add(float64(out))
	if in > 0 {
		m.comprRatio.Set(float64(out) / float64(in))
	}
}

func (m *metrics) ChannelInvalidated(reason string) {
	m.channelsInvalidated.WithLabelValues(reason).Inc()
}

// txmgr.Metrics

func (m *metrics) TxPublished(replacement bool) {
	l := "false"
	if replacement {
		l = "true"
	}
	m.txsPublished.WithLabelValues(l).Inc()
}

func (m *metrics) TxConfirmed(exec, blob *big.Int) {
	e, _ := new(big.Float).SetInt(exec).Float64()
	b, _ := new(big.Float).SetInt(blob).Float64()
	m.feesPaid.WithLabelValues("execution").Add(e)
	m.feesPaid.WithLabelValues("blob").Add(b)
}

func (m *metrics) PendingTxs(n int) { m.pendingTxs.Set(float64(n)) }
