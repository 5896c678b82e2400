//go:build linux

package proctest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BuildOpkit builds github.com/opkit/opkit/cmd/opkit into a temporary directory of t and
// returns the binary's path.
func BuildOpkit(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "opkit")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/opkit/opkit/cmd/opkit").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/opkit: %v\n%s", err, out)
	}
	return bin
}

// killWait bounds the wait for a killed process to be reaped.
const killWait = 10 * time.Second

// Process is one opkit command running as a child process, its output in a log file.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // the Wait result, set before done is closed
}

// Start runs bin with args as a child process named name (for messages), its standard
// output and error in a log file under t.TempDir(). The child dies with the test process
// (PR_SET_PDEATHSIG), and t's cleanup kills it and, when t failed, logs its output.
func Start(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	p := &Process{name: name, cmd: exec.Command(bin, args...), logPath: logFile.Name(), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(killWait):
			t.Errorf("%s (pid %d) was not reaped %s after SIGKILL", name, p.cmd.Process.Pid, killWait)
		}
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, p.cmd.Process.Pid, p.Log(t))
		}
	})
	return p
}

// Kill sends SIGKILL and waits for the process to end by it: the command gets no chance
// to flush or close anything. It fails t if the process had already ended otherwise.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.Exited(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(killWait):
		t.Fatalf("%s (pid %d) did not exit %s after SIGKILL", p.name, p.cmd.Process.Pid, killWait)
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v, not by SIGKILL", p.name, p.err)
	}
}

// Exited is an error naming how the process ended when it has, nil while it runs.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	default:
		return nil
	}
}

// Log is what the process has written so far.
func (p *Process) Log(t testing.TB) string {
	t.Helper()
	out, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Lines returns the lines of the process's log that contain any of subs, compared
// without regard to case.
func (p *Process) Lines(t testing.TB, subs ...string) []string {
	t.Helper()
	f, err := os.Open(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := strings.ToLower(sc.Text())
		for _, s := range subs {
			if strings.Contains(l, strings.ToLower(s)) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
