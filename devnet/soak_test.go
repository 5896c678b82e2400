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
	"runtime/pprof"
	"strconv"
	"strings"
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
	profiles := os.Getenv("OPKIT_SOAK_PROFILES") // a directory for heap profiles at start, middle and end
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

	// Warnings and up are checked (no error, one system label each) and printed.
	errs := newLogCheck(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), slog.LevelWarn)
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
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan error, 1)
	go func() { loadDone <- d.RunLoad(loadCtx, perBlock) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopLoad()
		<-loadDone
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	defer stop()

	parts := []string{"l1", "l2", "collector"}
	var samples []soakSample
	start := time.Now()
	midProfiled := false
	for time.Since(start) < duration {
		time.Sleep(every)
		switch {
		case len(samples) == 0:
			writeHeapProfile(t, profiles, "start")
		case !midProfiled && time.Since(start) >= duration/2:
			writeHeapProfile(t, profiles, "middle")
			midProfiled = true
		}
		st := syncStatus(t, d)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := soakSample{
			At: time.Since(start), RSS: rssBytes(t), Heap: ms.HeapInuse, GoMapped: ms.Sys - ms.HeapReleased,
			Unsafe: st.UnsafeL2.Number, Safe: st.SafeL2.Number, Finalized: st.FinalizedL2.Number,
			Errors: int64(len(errs.Errors())), Disk: map[string]uint64{},
			CPU: cpuTime(t), BatcherPending: d.Batcher.Status().PendingBlocks,
		}
		for _, p := range parts {
			s.Disk[p] = allocatedBytes(t, filepath.Join(dir, p))
		}
		samples = append(samples, s)
		t.Logf("%s rss %d MiB go-mapped %d MiB heap %d MiB cpu %.0fs unsafe %d safe %d finalized %d batcher pending %d disk %v errors %d", s.At.Round(time.Second),
			s.RSS>>20, s.GoMapped>>20, s.Heap>>20, s.CPU.Seconds(), s.Unsafe, s.Safe, s.Finalized, s.BatcherPending, s.Disk, s.Errors)
	}
	writeHeapProfile(t, profiles, "end")
	if err := writeSoak(out, parts, samples); err != nil {
		t.Fatal(err)
	}
	stop() // a clean stop is part of the run: what it logs is checked too
	for _, e := range errs.Errors() {
		t.Errorf("logged at error level: %s", e)
	}
	for _, b := range errs.Mislabelled() {
		t.Errorf("mislabelled: %s", b)
	}
	maxLag := uint64(0)
	for _, s := range samples {
		maxLag = max(maxLag, s.Unsafe-s.Safe)
	}
	// A channel holds under a channel duration of L2 blocks (L1 and L2 blocks are both
	// 2 s here), then lands in the next L1 block and is read at the node's next poll.
	if bound := uint64(devnet.DefaultMaxChannelDuration + 10); maxLag > bound {
		t.Errorf("safe lag reached %d blocks, above its bound of %d", maxLag, bound)
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
	GoMapped                uint64 // what the Go runtime holds from the OS; RSS beyond it is off-heap
	Unsafe, Safe, Finalized uint64
	Errors                  int64
	Disk                    map[string]uint64
	CPU                     time.Duration // the process's user and system time so far
	BatcherPending          int           // L2 blocks the batcher holds not yet on L1 in full
}

// writeHeapProfile writes the in-use heap to dir/heap-<name>.pprof (for go tool pprof
// -top) when dir is set.
func writeHeapProfile(t *testing.T, dir, name string) {
	if dir == "" {
		return
	}
	runtime.GC() // the profile's in-use figures are as of the last GC
	f, err := os.Create(filepath.Join(dir, "heap-"+name+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
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

// cpuTime is the process's user plus system CPU time, from /proc (clock ticks of 10ms).
func cpuTime(t *testing.T) time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: fields count from after it.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/self/stat: %v %v", err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
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
	header := []string{"seconds", "rss_mib", "go_mapped_mib", "heap_mib", "unsafe", "safe", "finalized", "errors", "cpu_s", "batcher_pending_blocks"}
	for _, p := range parts {
		header = append(header, p+"_disk_mib")
	}
	_ = w.Write(header)
	for _, s := range samples {
		row := []string{fmt.Sprint(int(s.At.Seconds())), mib(s.RSS), mib(s.GoMapped), mib(s.Heap), fmt.Sprint(s.Unsafe), fmt.Sprint(s.Safe), fmt.Sprint(s.Finalized), fmt.Sprint(s.Errors),
			strconv.FormatFloat(s.CPU.Seconds(), 'f', 1, 64), fmt.Sprint(s.BatcherPending)}
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
		{"held by the Go runtime (MiB)", "#6baed6", func(s soakSample) float64 { return float64(s.GoMapped) / (1 << 20) }},
		{"Go heap in use (MiB)", "#aec7e8", func(s soakSample) float64 { return float64(s.Heap) / (1 << 20) }},
		{"safe lag (L2 blocks)", "#d62728", func(s soakSample) float64 { return float64(s.Unsafe - s.Safe) }},
		{"batcher pending blocks", "#e377c2", func(s soakSample) float64 { return float64(s.BatcherPending) }},
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
