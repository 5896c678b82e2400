//go:build soak

package devnet_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/devnet"
)

// TestSoak runs the whole devnet under load for OPKIT_SOAK_DURATION (default 30m) and
// samples, every OPKIT_SOAK_EVERY (default 30s), the process's memory, each part's disk,
// and the safe lag. It fails if an error is logged, the safe lag passes its bound, or
// memory or disk keep growing in the second half. Figures go to OPKIT_SOAK_OUT
// (default docs/soak.csv and docs/soak.svg). Run it with `make soak`.
func TestSoak(t *testing.T) {
	duration := envDuration(t, "OPKIT_SOAK_DURATION", 30*time.Minute)
	every := envDuration(t, "OPKIT_SOAK_EVERY", 30*time.Second)
	out := os.Getenv("OPKIT_SOAK_OUT")
	if out == "" {
		out = "../docs/soak"
	}
	perBlock := 100
	if s := os.Getenv("OPKIT_SOAK_LOAD"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("OPKIT_SOAK_LOAD: %v", err)
		}
		perBlock = n
	}

	errs := &countingHandler{Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	d, err := devnet.Start(ctx, devnet.Config{
		DataDir: dir, L1BlockTime: 2 * time.Second, L2BlockTime: 2, NodeMetricsDisabled: true,
		Logger:    slog.New(errs),
		Batcher:   &devnet.BatcherConfig{DA: batcher.DABlobs},
		Collector: &devnet.CollectorConfig{Window: 300},
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan error, 1)
	go func() { loadDone <- d.RunLoad(loadCtx, perBlock) }()
	defer func() {
		stopLoad()
		<-loadDone
	}()

	parts := []string{"l1", "l2", "collector"}
	var samples []soakSample
	start := time.Now()
	for time.Since(start) < duration {
		time.Sleep(every)
		st := syncStatus(t, d)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := soakSample{
			At: time.Since(start), RSS: rssBytes(t), Heap: ms.HeapInuse,
			Unsafe: st.UnsafeL2.Number, Safe: st.SafeL2.Number, Finalized: st.FinalizedL2.Number,
			Errors: errs.n.Load(), Disk: map[string]uint64{},
		}
		for _, p := range parts {
			s.Disk[p] = allocatedBytes(t, filepath.Join(dir, p))
		}
		samples = append(samples, s)
		t.Logf("%s rss %d MiB heap %d MiB unsafe %d safe %d finalized %d disk %v errors %d", s.At.Round(time.Second),
			s.RSS>>20, s.Heap>>20, s.Unsafe, s.Safe, s.Finalized, s.Disk, s.Errors)
	}
	if err := writeSoak(out, parts, samples); err != nil {
		t.Fatal(err)
	}
	last := samples[len(samples)-1]
	if last.Errors != 0 {
		t.Errorf("%d errors logged", last.Errors)
	}
	maxLag := uint64(0)
	for _, s := range samples {
		maxLag = max(maxLag, s.Unsafe-s.Safe)
	}
	// Channels close after two L1 blocks and land in the next: a few L1 blocks of L2.
	if maxLag > 30 {
		t.Errorf("safe lag reached %d blocks", maxLag)
	}
	// Bounded: the second half's peak is within 1.5x of the first half's (the collector
	// keeps a fixed window; the chains grow by their blocks, which the disk figure of
	// l1 and l2 includes and the bound allows for).
	half := len(samples) / 2
	peak := func(f func(soakSample) uint64, from, to int) uint64 {
		m := uint64(0)
		for _, s := range samples[from:to] {
			m = max(m, f(s))
		}
		return m
	}
	for name, f := range map[string]func(soakSample) uint64{
		"rss":       func(s soakSample) uint64 { return s.RSS },
		"collector": func(s soakSample) uint64 { return s.Disk["collector"] },
	} {
		if a, b := peak(f, 0, half), peak(f, half, len(samples)); half > 0 && float64(b) > 1.5*float64(a) {
			t.Errorf("%s grew from a first-half peak of %d to %d", name, a, b)
		}
	}
}

type soakSample struct {
	At                      time.Duration
	RSS, Heap               uint64
	Unsafe, Safe, Finalized uint64
	Errors                  int64
	Disk                    map[string]uint64
}

// countingHandler counts the records at error level that pass through it.
type countingHandler struct {
	slog.Handler
	n atomic.Int64
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandlerView{parent: h, Handler: h.Handler.WithAttrs(attrs)}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandlerView{parent: h, Handler: h.Handler.WithGroup(name)}
}

// countingHandlerView is a derived handler that counts into its parent.
type countingHandlerView struct {
	slog.Handler
	parent *countingHandler
}

func (h *countingHandlerView) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.parent.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandlerView) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandlerView{parent: h.parent, Handler: h.Handler.WithAttrs(attrs)}
}

func (h *countingHandlerView) WithGroup(name string) slog.Handler {
	return &countingHandlerView{parent: h.parent, Handler: h.Handler.WithGroup(name)}
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// rssBytes is the process's resident set, from /proc.
func rssBytes(t *testing.T) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// allocatedBytes is what dir takes on disk (allocated blocks, as du counts them).
func allocatedBytes(t *testing.T, dir string) uint64 {
	var total uint64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // files come and go under a live database
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += uint64(st.Blocks) * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// writeSoak writes the samples as CSV and plots memory, disk and safe lag as an SVG.
func writeSoak(out string, parts []string, samples []soakSample) error {
	f, err := os.Create(out + ".csv")
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	header := []string{"seconds", "rss_mib", "heap_mib", "unsafe", "safe", "finalized", "errors"}
	for _, p := range parts {
		header = append(header, p+"_disk_mib")
	}
	_ = w.Write(header)
	for _, s := range samples {
		row := []string{fmt.Sprint(int(s.At.Seconds())), mib(s.RSS), mib(s.Heap), fmt.Sprint(s.Unsafe), fmt.Sprint(s.Safe), fmt.Sprint(s.Finalized), fmt.Sprint(s.Errors)}
		for _, p := range parts {
			row = append(row, mib(s.Disk[p]))
		}
		_ = w.Write(row)
	}
	w.Flush()
	if err := errorsJoin(w.Error(), f.Close()); err != nil {
		return err
	}
	series := []plotSeries{
		{"process RSS (MiB)", "#1f77b4", func(s soakSample) float64 { return float64(s.RSS) / (1 << 20) }},
		{"Go heap in use (MiB)", "#aec7e8", func(s soakSample) float64 { return float64(s.Heap) / (1 << 20) }},
		{"safe lag (L2 blocks)", "#d62728", func(s soakSample) float64 { return float64(s.Unsafe - s.Safe) }},
	}
	colors := []string{"#2ca02c", "#ff7f0e", "#9467bd"}
	for i, p := range parts {
		series = append(series, plotSeries{p + " disk (MiB)", colors[i%len(colors)], func(s soakSample) float64 { return float64(s.Disk[p]) / (1 << 20) }})
	}
	return os.WriteFile(out+".svg", []byte(plot(samples, series)), 0o644)
}

func mib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

type plotSeries struct {
	name, color string
	value       func(soakSample) float64
}

// plot draws each series in its own small panel, sharing the time axis.
func plot(samples []soakSample, series []plotSeries) string {
	const w, panelH, left, top = 720, 110, 70, 20
	h := top + len(series)*(panelH+30)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	end := samples[len(samples)-1].At.Seconds()
	for i, s := range series {
		y0 := top + i*(panelH+30)
		hi := 0.0
		for _, smp := range samples {
			hi = max(hi, s.value(smp))
		}
		if hi == 0 {
			hi = 1
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (max %.1f)</text>`+"\n", left, y0+10, s.name, hi)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0+15, w-left-10, panelH-15)
		var pts []string
		for _, smp := range samples {
			x := float64(left) + smp.At.Seconds()/end*float64(w-left-10)
			y := float64(y0+panelH) - s.value(smp)/hi*float64(panelH-20)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f</text>`+"\n", left-5, y0+25, hi)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">0</text>`+"\n", left-5, y0+panelH)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">time (s), 0 to %.0f</text>`+"\n", left, h-5, end)
	b.WriteString("</svg>\n")
	return b.String()
}
