package altda_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	opaltda "github.com/ethereum-optimism/optimism/op-alt-da"
	"github.com/ethereum/go-ethereum/log"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
)

func frame(seed int, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*131) ^ byte(i*31) ^ byte(i>>8)
	}
	copy(b, []byte{0x00}) // derivation version 0, as the batcher's preimages start
	return b
}

// startOpkit runs opkit's server in-process: pebble primary, memory secondary.
func startOpkit(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	p, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.Primary = p
	cfg.Secondaries = []store.Store{store.NewMemory()}
	cfg.RepairDir = t.TempDir()
	cfg.FaultsAdmin = true
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func setFaults(t *testing.T, url, doc string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url+"/admin/faults", strings.NewReader(doc))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("set faults: %d", resp.StatusCode)
	}
}

func TestStockClientKeccakAgainstOpkit(t *testing.T) {
	s := startOpkit(t, server.Config{})
	ctx := context.Background()
	c := opaltda.NewDAClient(s.URL(), true, true) // verify reads, precompute keccak: op-batcher/op-node defaults
	data := frame(1, 120000)
	comm, err := c.SetInput(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(comm.Encode(), altda.Keccak256Commitment(data)) {
		t.Fatalf("stock commitment %x differs from opkit's", comm.Encode())
	}
	got, err := c.GetInput(ctx, comm)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stock GetInput: %v", err)
	}
	// The batcher resends at once after any failure: same body, same answer.
	if again, err := c.SetInput(ctx, data); err != nil || !bytes.Equal(again.Encode(), comm.Encode()) {
		t.Fatalf("resend: %v", err)
	}
	if _, err := c.GetInput(ctx, opaltda.NewKeccak256Commitment([]byte("absent"))); !errors.Is(err, opaltda.ErrNotFound) {
		t.Fatalf("stock client on a missing commitment: %v, want its ErrNotFound", err)
	}

	// The extended answers are plain errors to the stock client (it knows only 200), so
	// a batcher built on it re-queues and resends; the resend completes the write.
	setFaults(t, s.URL(), `{"secondary":{"put":"error"}}`)
	partial := frame(2, 50000)
	if _, err := c.SetInput(ctx, partial); err == nil {
		t.Fatal("stock client took a 201 partial success for a 200")
	}
	setFaults(t, s.URL(), `{}`)
	pc, err := c.SetInput(ctx, partial)
	if err != nil {
		t.Fatalf("resend after the secondary recovered: %v", err)
	}
	if got, err := c.GetInput(ctx, pc); err != nil || !bytes.Equal(got, partial) {
		t.Fatalf("get after completion: %v", err)
	}
	setFaults(t, s.URL(), `{"primary":{"put":"unavailable"}}`)
	if _, err := c.SetInput(ctx, frame(3, 100)); err == nil {
		t.Fatal("stock client took a 503 for a 200")
	}
	// Reads keep working for the stock client while writes are refused.
	if got, err := c.GetInput(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read while writes fail: %v", err)
	}
}

func TestStockClientGenericAgainstOpkit(t *testing.T) {
	s := startOpkit(t, server.Config{GenericCommitment: true, DALayerByte: 0x0c})
	ctx := context.Background()
	c := opaltda.NewDAClient(s.URL(), false, false) // generic: the server makes the commitment
	data := frame(4, 120000)
	comm, err := c.SetInput(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if comm.CommitmentType() != opaltda.GenericCommitmentType {
		t.Fatalf("stock client decoded a %v commitment", comm.CommitmentType())
	}
	if !bytes.Equal(comm.Encode(), altda.ContentAddressedGeneric(0x0c, data)) {
		t.Fatalf("commitment %x", comm.Encode())
	}
	// Decoding round trip the way op-node does from L1 calldata.
	decoded, err := opaltda.DecodeCommitmentData(comm.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetInput(ctx, decoded)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
	if !bytes.Equal(comm.TxData(), altda.Commitment(comm.Encode()).TxData()) {
		t.Fatal("tx data differs between the stock codec and opkit's")
	}
	again, err := c.SetInput(ctx, data)
	if err != nil || !bytes.Equal(again.Encode(), comm.Encode()) {
		t.Fatalf("generic resend gave %x, %v; want the same commitment", again.Encode(), err)
	}
}

// startReference runs op-alt-da's reference DAServer over its in-memory store.
func startReference(t *testing.T, generic bool) string {
	t.Helper()
	s := opaltda.NewDAServer("127.0.0.1", 0, opaltda.NewMemStore(), log.NewLogger(log.DiscardHandler()), generic)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s.HttpEndpoint()
}

func TestOpkitClientAgainstReferenceServer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		generic bool
		mode    altda.Mode
	}{{"keccak", false, altda.KeccakMode}, {"generic", true, altda.GenericMode}} {
		t.Run(tc.name, func(t *testing.T) {
			url := startReference(t, tc.generic)
			c, err := altda.NewClient(altda.ClientConfig{URL: url, Mode: tc.mode, VerifyGets: true, PutTimeout: 10 * time.Second, GetTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			data := frame(5, 120000)
			comm, err := c.Put(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			if tc.generic && comm.Type() != altda.GenericType {
				t.Fatalf("commitment %s", comm)
			}
			if !tc.generic && !bytes.Equal(comm, altda.Keccak256Commitment(data)) {
				t.Fatalf("commitment %s", comm)
			}
			got, err := c.Get(ctx, comm)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get: %v", err)
			}
			// The stock server's commitments decode with the stock codec too.
			if _, err := opaltda.DecodeCommitmentData(comm); err != nil {
				t.Fatal(err)
			}
			missing := altda.Keccak256Commitment([]byte("absent"))
			if _, err := c.Get(ctx, missing); !errors.Is(err, altda.ErrNotFound) {
				t.Fatalf("missing on the reference server: %v", err)
			}
		})
	}
}

// TestStockClientAgainstDAServerBinary runs the `opkit da-server` command itself and
// drives it with the stock client in both modes, as op-batcher and op-node would.
func TestStockClientAgainstDAServerBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "opkit")
	build(t, filepath.Join("..", ".."), bin, "./cmd/opkit")
	listening := regexp.MustCompile(`msg="da-server listening".* url=(http://\S+)`)
	ctx := context.Background()
	for _, mode := range []struct {
		name    string
		generic bool
	}{{"keccak", false}, {"generic", true}} {
		t.Run(mode.name, func(t *testing.T) {
			args := []string{"da-server", "--port", "0", "--metrics.port", "0", "--datadir", t.TempDir(), "--secondary", "pebble"}
			if mode.generic {
				args = append(args, "--generic-commitment", "--da-layer-byte", "10")
			}
			url, _ := startProcess(t, bin, listening, "", args...)
			c := opaltda.NewDAClient(url, true, !mode.generic)
			for i := 0; i < 5; i++ {
				data := frame(100+i, 120000-i)
				comm, err := c.SetInput(ctx, data)
				if err != nil {
					t.Fatal(err)
				}
				if mode.generic && (comm.CommitmentType() != opaltda.GenericCommitmentType || comm.Encode()[1] != 10) {
					t.Fatalf("commitment %x", comm.Encode())
				}
				got, err := c.GetInput(ctx, comm)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("get %d: %v", i, err)
				}
			}
			if _, err := c.GetInput(ctx, opaltda.NewKeccak256Commitment([]byte("absent"))); !errors.Is(err, opaltda.ErrNotFound) {
				t.Fatalf("missing: %v", err)
			}
		})
	}
}
