package peers

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// The peers run as their own processes, built from compat/peers/cmd: op-node v1.16.13 has
// data races between its L1 head watcher and its event loop that the race detector
// reports in any test that runs it in-process, and they are not opkit's to fix. A process
// also gives each peer its own globals (log handler, flag state) as a deployment has.

//go:embed cmd/op-node/main.go
var opNodeMain []byte

//go:embed cmd/op-batcher/main.go
var opBatcherMain []byte

//go:embed cmd/op-supervisor/main.go
var opSupervisorMain []byte

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Build makes sure the op-node, op-batcher and op-supervisor binaries are built, so that a
// test can do it before its own clock starts; the first StartOpNode, StartBatcher or
// StartOpSupervisor does it otherwise.
func Build(ctx context.Context) error {
	_, err := binaries(ctx)
	return err
}

// binaries builds the op-node, op-batcher and op-supervisor commands once per cache key:
// the commands' sources, the compat module's resolved module graph and the Go version.
// Linking them takes half a minute on a loaded machine, so the result is kept in the user
// cache directory across test runs.
func binaries(ctx context.Context) (string, error) {
	buildOnce.Do(func() { buildDir, buildErr = build(ctx) })
	return buildDir, buildErr
}

func build(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	mods, err := exec.CommandContext(ctx, "go", "list", "-m", "all").Output()
	if err != nil {
		return "", fmt.Errorf("list modules: %w", err)
	}
	h := sha256.New()
	for _, part := range [][]byte{opNodeMain, opBatcherMain, opSupervisorMain, mods, []byte(runtime.Version())} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "opkit-peers", key)
	if fileExists(filepath.Join(dir, "op-node")) && fileExists(filepath.Join(dir, "op-batcher")) && fileExists(filepath.Join(dir, "op-supervisor")) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create peer cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("create peer cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp+string(filepath.Separator),
		"github.com/opkit/opkit/compat/peers/cmd/op-node", "github.com/opkit/opkit/compat/peers/cmd/op-batcher",
		"github.com/opkit/opkit/compat/peers/cmd/op-supervisor")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build op-node, op-batcher and op-supervisor: %w\n%s", err, out)
	}
	// Another test process may have finished the same build first; either copy is good.
	if err := os.Rename(tmp, dir); err != nil && !fileExists(filepath.Join(dir, "op-node")) {
		return "", fmt.Errorf("store peer binaries: %w", err)
	}
	return dir, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// freePort asks the kernel for a free loopback port. The peer binds it a moment later;
// another process taking it in between makes the peer fail to start, not misbehave.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailLines keeps the last lines a process wrote, for error reports.
const tailLines = 30

// process is a running peer.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *slog.Logger
	done chan struct{}

	mu       sync.Mutex
	tail     []string
	partial  []byte
	stopping bool
	exitErr  error

	stopOnce sync.Once
	stopErr  error
}

func startProcess(name, bin string, args []string, log *slog.Logger) (*process, error) {
	p := &process{name: name, log: log, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	setParentDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Write collects the process's output by line: each line goes to the logger (the peers
// log at warn level and above, so these are worth seeing) and into the tail.
func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		p.tail = append(p.tail, line)
		if len(p.tail) > tailLines {
			p.tail = p.tail[1:]
		}
		p.log.Warn(line, "system", p.name)
	}
	return len(b), nil
}

// Err reports whether the process ended, and how, when nobody asked it to.
func (p *process) Err() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return nil
	}
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.exitErr, strings.Join(p.tail, "\n"))
}

// stop interrupts the process (the peers shut down cleanly on SIGINT) and kills it if it
// has not exited within the timeout.
func (p *process) stop(timeout time.Duration) error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopping = true
		p.mu.Unlock()
		select {
		case <-p.done:
			return
		default:
		}
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("interrupt %s: %w", p.name, err)
		}
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("%s did not stop within %s; killed", p.name, timeout))
		}
	})
	return p.stopErr
}

// waitReady polls ready until it succeeds, the process exits or ctx ends.
func (p *process) waitReady(ctx context.Context, ready func(context.Context) error) error {
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(attempt)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-p.done:
			return p.Err()
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", p.name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
