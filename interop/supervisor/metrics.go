package supervisor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/interop"
)

// Metrics are the supervisor's prometheus metrics.
type Metrics struct {
	heads             *prometheus.GaugeVec
	events            *prometheus.CounterVec
	resets            *prometheus.CounterVec
	invalidations     *prometheus.CounterVec
	connects          prometheus.Counter
	disconnects       prometheus.Counter
	provided          prometheus.Counter
	l1Mismatches      prometheus.Counter
	l1Reorgs          prometheus.Counter
	promotionFailures prometheus.Counter
}

// NewMetrics registers the metrics with reg; nil keeps them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		heads: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "head",
			Help: "Block number of a chain's head, by kind (local_unsafe, cross_unsafe, local_safe, cross_safe, finalized)",
		}, []string{"chain", "kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "node_events_total",
			Help: "Events received from managed nodes, by chain and kind",
		}, []string{"chain", "kind"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "node_resets_total",
			Help: "Resets of managed nodes, by chain",
		}, []string{"chain"}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "invalidations_total",
			Help: "Blocks invalidated for invalid executing messages, by chain",
		}, []string{"chain"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "node_connects_total",
			Help: "Successful node connections, including reconnects",
		}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "node_disconnects_total",
			Help: "Node connections lost",
		}),
		provided: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "l1_provided_total",
			Help: "L1 blocks provided to nodes after they exhausted L1",
		}),
		l1Mismatches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "l1_not_extending_total",
			Help: "Times the next L1 block did not extend the one a node exhausted (an L1 reorg); the node is checked instead",
		}),
		l1Reorgs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "l1_reorg_rewinds_total",
			Help: "Times a chain's safe heads were lowered because an L1 reorg dropped the L1 block they were derived from",
		}),
		promotionFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "opkit", Subsystem: "supervisor", Name: "node_call_failures_total",
			Help: "Promotion and invalidation calls a node did not acknowledge (they are retried)",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.heads, m.events, m.resets, m.invalidations, m.connects, m.disconnects, m.provided, m.l1Mismatches, m.l1Reorgs, m.promotionFailures)
	}
	return m
}

func (m *Metrics) setHeads(c interop.ChainID, st *chainState) {
	id := c.String()
	m.heads.WithLabelValues(id, "local_unsafe").Set(float64(st.LocalUnsafe.Number))
	m.heads.WithLabelValues(id, "cross_unsafe").Set(float64(st.CrossUnsafe.Number))
	m.heads.WithLabelValues(id, "local_safe").Set(float64(st.LocalSafe.Derived.Number))
	m.heads.WithLabelValues(id, "cross_safe").Set(float64(st.CrossSafe.Derived.Number))
	m.heads.WithLabelValues(id, "finalized").Set(float64(st.Finalized.Number))
}
