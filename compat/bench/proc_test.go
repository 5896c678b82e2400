package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's utime and stime: 100 on every
// Linux configuration Go supports.
const clockTicks = 100

// procStat returns a process's parent pid, command name and CPU time (user + system)
// from /proc/<pid>/stat.
func procStat(pid int) (ppid int, comm string, cpu time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", 0, err
	}
	// comm is in parentheses and may hold spaces; the fields after it are plain.
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return 0, "", 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(data[end+1:]))
	if len(f) < 13 {
		return 0, "", 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, "", 0, err
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, "", 0, err
	}
	return ppid, string(data[open+1 : end]), time.Duration(ut+st) * time.Second / clockTicks, nil
}

func processCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	_, _, cpu, err := procStat(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return cpu
}

// childNamed finds the one child process of this test process with the given command
// name: the peers harness starts op-node and op-batcher without telling their pids.
func childNamed(tb testing.TB, comm string) int {
	tb.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	self := os.Getpid()
	var found []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		ppid, c, _, err := procStat(pid)
		if err == nil && ppid == self && c == comm {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%d child processes named %s, want one", len(found), comm)
	}
	return found[0]
}

// child is a process the benchmark starts, stopped with SIGINT and killed with the
// test process if that dies first.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startChild(name, bin string, args, env []string) (*child, error) {
	c := &child{name: name, done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports the exit of a child that was not asked to stop.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited: %v", c.name, c.err)
	default:
		return nil
	}
}

func (c *child) stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("interrupt %s: %w", c.name, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within 30s; killed", c.name)
	}
}

// buildOpkit builds the opkit command into dir.
func buildOpkit(tb testing.TB, dir string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "opkit")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/opkit/opkit/cmd/opkit").CombinedOutput()
	if err != nil {
		tb.Fatalf("build opkit: %v\n%s", err, out)
	}
	return bin
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// median of a non-empty sample.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
