package derivetest

import (
	"maps"
	"sync"
)

// Metrics records every count, keyed "data/<reason>", "frame/<reason>",
// "channel/<reason>", "batch/<kind>/<verdict>" and "reset".
type Metrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *Metrics) inc(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[key]++
}

func (m *Metrics) DataDropped(reason string)         { m.inc("data/" + reason) }
func (m *Metrics) FrameDropped(reason string)        { m.inc("frame/" + reason) }
func (m *Metrics) ChannelDropped(reason string)      { m.inc("channel/" + reason) }
func (m *Metrics) BatchVerdict(kind, verdict string) { m.inc("batch/" + kind + "/" + verdict) }
func (m *Metrics) PipelineReset()                    { m.inc("reset") }

// Count is one key's count.
func (m *Metrics) Count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[key]
}

// Counts is a copy of every count.
func (m *Metrics) Counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.counts)
}
