package server

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/opkit/opkit/altda/store"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	storeOps      *prometheus.CounterVec
	storeDuration *prometheus.HistogramVec
	breakerState  prometheus.Gauge
	breakerTrips  prometheus.Counter
	repairQueue   prometheus.GaugeFunc
	repaired      *prometheus.CounterVec
	cacheHits     prometheus.Counter
	coalesced     prometheus.Counter
	verifyFailed  *prometheus.CounterVec
	putBytes      prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, queueLen func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opkit_altda_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "opkit_altda_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opkit_altda_store_ops_total", Help: "Store operations by store, operation and result (ok, not_found, unavailable, corrupt, error).",
		}, []string{"store", "op", "result"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "opkit_altda_store_op_duration_seconds", Help: "Store operation latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"store", "op"}),
		breakerState: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "opkit_altda_breaker_state", Help: "Primary circuit breaker: 0 closed, 1 open, 2 half-open.",
		}),
		breakerTrips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opkit_altda_breaker_opened_total", Help: "Times the primary circuit breaker opened.",
		}),
		repairQueue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opkit_altda_repair_queue_length", Help: "Secondary writes waiting in the repair queue.",
		}, queueLen),
		repaired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opkit_altda_repaired_total", Help: "Secondary writes completed from the repair queue or by a resend.",
		}, []string{"store"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opkit_altda_cache_hits_total", Help: "GETs served from the in-memory cache.",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opkit_altda_get_coalesced_total", Help: "GETs answered by another in-flight GET of the same commitment.",
		}),
		verifyFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opkit_altda_verify_failures_total", Help: "Reads whose bytes did not match the commitment, by store.",
		}, []string{"store"}),
		putBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opkit_altda_put_bytes_total", Help: "Preimage bytes accepted by PUT.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.storeOps, m.storeDuration, m.breakerState, m.breakerTrips,
		m.repairQueue, m.repaired, m.cacheHits, m.coalesced, m.verifyFailed, m.putBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrumented counts and times every operation of a store.
type instrumented struct {
	store.Store
	label string
	m     *metrics
}

func (s instrumented) observe(op string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		result = "not_found"
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		result = "unavailable"
	case errors.Is(err, store.ErrCorrupt):
		result = "corrupt"
	default:
		result = "error"
	}
	s.m.storeOps.WithLabelValues(s.label, op, result).Inc()
	s.m.storeDuration.WithLabelValues(s.label, op).Observe(time.Since(start).Seconds())
}

func (s instrumented) Get(ctx context.Context, key []byte) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.Get(ctx, key)
	s.observe("get", start, err)
	return v, err
}

func (s instrumented) Has(ctx context.Context, key []byte) (bool, error) {
	start := time.Now()
	ok, err := s.Store.Has(ctx, key)
	s.observe("has", start, err)
	return ok, err
}

func (s instrumented) Put(ctx context.Context, key, value []byte) error {
	start := time.Now()
	err := s.Store.Put(ctx, key, value)
	s.observe("put", start, err)
	return err
}
