package collector_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
)

// chains is a hot path-scheme execution client (what the collector follows) and, when
// asked for, a hash-scheme archive of the same chain (the ground truth).
type chains struct {
	hot     *devnet.L1
	archive *devnet.L1
	fed     uint64 // highest block inserted into the archive
}

func startHot(t testing.TB) (*devnet.L1, string) {
	t.Helper()
	dir := t.TempDir()
	l1, err := devnet.StartL1(devnet.L1Config{DataDir: filepath.Join(dir, "hot"), Scheme: devnet.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l1.Close(); err != nil {
			t.Errorf("close hot client: %v", err)
		}
	})
	return l1, dir
}

// startChains starts the hot client and an archive that shares its genesis.
func startChains(t testing.TB) *chains {
	t.Helper()
	hot, dir := startHot(t)
	genesis, err := os.ReadFile(filepath.Join(dir, "hot", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	archDir := filepath.Join(dir, "archive")
	if err := os.MkdirAll(archDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(archDir, "genesis.json"), genesis, 0o644); err != nil {
		t.Fatal(err)
	}
	archive, err := devnet.StartL1(devnet.L1Config{DataDir: archDir, Scheme: devnet.HashArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := archive.Close(); err != nil {
			t.Errorf("close archive: %v", err)
		}
	})
	if archive.Backend().BlockChain().Genesis().Hash() != hot.Backend().BlockChain().Genesis().Hash() {
		t.Fatal("archive and hot client have different genesis blocks")
	}
	return &chains{hot: hot, archive: archive}
}

// feed inserts the hot client's canonical blocks up to its head into the archive.
func (c *chains) feed(t testing.TB) {
	t.Helper()
	hotBC := c.hot.Backend().BlockChain()
	head := c.hot.Head().Number.Uint64()
	var blocks types.Blocks
	for n := c.fed + 1; n <= head; n++ {
		blocks = append(blocks, hotBC.GetBlockByNumber(n))
	}
	if len(blocks) == 0 {
		return
	}
	if _, err := c.archive.Backend().BlockChain().InsertChain(blocks); err != nil {
		t.Fatalf("archive rejected blocks %d..%d: %v", c.fed+1, head, err)
	}
	c.fed = head
}

func newCollector(t testing.TB, l2, dir string, window uint64) *collector.Collector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	c, err := collector.New(ctx, collector.Config{L2: l2, DataDir: dir, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func closeCollector(t testing.TB, c *collector.Collector) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close collector: %v", err)
	}
}

func startServer(t testing.TB, c *collector.Collector) *collector.Server {
	t.Helper()
	srv, err := collector.StartServer(c, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10e9)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return srv
}
