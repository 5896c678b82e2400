package collector

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	head, first, last, preimages, bytes, disk, gapBlocks, halted prometheus.Gauge
	collected, released, reorgs, errors, retries                 prometheus.Counter
	collectSeconds                                               prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "collector", Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "collector", Name: name, Help: help})
	}
	m := &metrics{
		head:      g("head_block", "Head block number of the execution client, as last seen."),
		first:     g("window_first_block", "Lowest retained block number."),
		last:      g("window_last_block", "Highest retained (last collected) block number."),
		preimages: g("store_preimages", "Trie nodes and codes held in the store."),
		bytes:     g("store_bytes", "Bytes of trie nodes and code held in the store."),
		disk:      g("store_disk_bytes", "Bytes the store's files take on disk, counted as du does (allocated blocks)."),
		gapBlocks: g("gap_blocks", "Blocks that could not be collected because the execution client no longer had their parent state."),
		halted:    g("halted", "1 when collection stopped on a block that failed its check."),
		collected: c("blocks_collected_total", "Blocks collected and checked."),
		released:  c("blocks_released_total", "Blocks dropped from the store (left the window or orphaned)."),
		reorgs:    c("reorgs_total", "Orphaned blocks dropped because the execution client's chain changed."),
		errors:    c("collect_errors_total", "Failed collection attempts that will be retried."),
		retries:   c("rpc_retries_total", "Execution-client calls tried again after a failure that may pass."),
		collectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "collector", Name: "block_collect_seconds", Help: "Time to fetch, replay and store one block.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 12),
		}),
	}
	reg.MustRegister(m.head, m.first, m.last, m.preimages, m.bytes, m.disk, m.gapBlocks, m.halted,
		m.collected, m.released, m.reorgs, m.errors, m.retries, m.collectSeconds)
	return m
}
