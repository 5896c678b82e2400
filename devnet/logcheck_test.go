package devnet_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// systems are the values of the system label: one per part of a devnet, "geth" for
// op-geth's process-wide log (shared by the L1 and L2 clients), "devnet" for the
// devnet's own records.
var systems = []string{"l1", "l2", "geth", "node", "batcher", "collector", "da-server", "supervisor", "devnet"}

// logCheck is a slog handler that checks every record at or above its level and passes
// it on to next when next takes it: it keeps the records at error level, and those
// whose labels break the devnet's rule (exactly one system attribute, one of systems,
// and no key twice).
type logCheck struct {
	next   slog.Handler
	level  slog.Level
	prefix string      // the open groups, dotted
	attrs  []slog.Attr // from WithAttrs, keys already prefixed
	st     *logCheckState
}

type logCheckState struct {
	mu      sync.Mutex
	errors  []string
	bad     []string
	records map[string]int // by system label
}

func newLogCheck(next slog.Handler, level slog.Level) *logCheck {
	return &logCheck{next: next, level: level, st: &logCheckState{records: map[string]int{}}}
}

func (h *logCheck) Enabled(ctx context.Context, l slog.Level) bool { return l >= h.level }

func (h *logCheck) Handle(ctx context.Context, r slog.Record) error {
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
		return true
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
	seen := map[string]bool{}
	var system []string
	var dup []string
	for _, a := range attrs {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		if seen[a.Key] {
			dup = append(dup, a.Key)
		}
		seen[a.Key] = true
		if a.Key == "system" {
			system = append(system, a.Value.String())
		}
	}
	line := b.String()
	h.st.mu.Lock()
	if r.Level >= slog.LevelError {
		h.st.errors = append(h.st.errors, line)
	}
	switch {
	case len(system) != 1:
		h.st.bad = append(h.st.bad, fmt.Sprintf("%d system labels: %s", len(system), line))
	case !slices.Contains(systems, system[0]):
		h.st.bad = append(h.st.bad, fmt.Sprintf("system %q is not a part: %s", system[0], line))
	case len(dup) > 0:
		h.st.bad = append(h.st.bad, fmt.Sprintf("keys %v twice: %s", dup, line))
	}
	if len(system) == 1 {
		h.st.records[system[0]]++
	}
	h.st.mu.Unlock()
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logCheck) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		c.attrs = append(c.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	if h.next != nil {
		c.next = h.next.WithAttrs(attrs)
	}
	return &c
}

func (h *logCheck) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix = h.prefix + name + "."
	if h.next != nil {
		c.next = h.next.WithGroup(name)
	}
	return &c
}

// Errors are the records logged at error level.
func (h *logCheck) Errors() []string {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	return slices.Clone(h.st.errors)
}

// Mislabelled are the records that break the label rule.
func (h *logCheck) Mislabelled() []string {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	return slices.Clone(h.st.bad)
}

// Records counts the records checked, by system label.
func (h *logCheck) Records(system string) int {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	return h.st.records[system]
}
