package miniotest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is a running MinIO.
type Server struct {
	Endpoint        string // host:port
	AccessKeyID     string
	SecretAccessKey string

	cmd    *exec.Cmd
	done   chan struct{}
	output *syncBuffer
}

// Binary finds the minio binary on PATH, then in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err == nil {
			gopath = string(bytes.TrimSpace(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "minio")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("minio binary not found on PATH or in $GOPATH/bin (install it with `go install github.com/minio/minio@latest`)")
}

// Start runs a MinIO server for the test and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	// A free port can be taken between probing and minio binding it; try a few.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start minio: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:        net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		AccessKeyID:     "opkit-test",
		SecretAccessKey: "opkit-test-secret",
		done:            make(chan struct{}),
		output:          &syncBuffer{},
	}
	s.cmd = exec.Command(bin, "server", "--quiet", "--address", s.Endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)), t.TempDir())
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKeyID,
		"MINIO_ROOT_PASSWORD="+s.SecretAccessKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; minio said: %s", err, s.output.String())
	}
	t.Cleanup(s.Stop)
	return s, nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	// The health endpoint can say ready while the S3 API still answers 503 "server not
	// initialized"; an anonymous S3 request is refused with 403 only once it is.
	probes := []string{"http://" + s.Endpoint + "/minio/health/ready", "http://" + s.Endpoint + "/"}
	for {
		ready := true
		for _, url := range probes {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				ready = false
				break
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable || (url == probes[0] && resp.StatusCode != http.StatusOK) {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("minio exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("minio at %s not ready after %s", s.Endpoint, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the server and waits for it to exit. It is safe to call twice.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 64<<10 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
