package dasource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"

	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/dasource"
)

// dataBlob packs data into a blob with the batch codec.
func dataBlob(t *testing.T, data []byte) *kzg4844.Blob {
	t.Helper()
	var b batch.Blob
	if err := b.FromData(data); err != nil {
		t.Fatal(err)
	}
	kb := kzg4844.Blob(b)
	return &kb
}

func mustHash(t *testing.T, b *kzg4844.Blob) common.Hash {
	t.Helper()
	h, err := dasource.VersionedHash(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// blobServer serves a beacon API with the given blobs at one slot; answer rewrites the
// blob list it returns (fault injection).
type blobServer struct {
	genesis, slotLen uint64
	slot             uint64
	blobs            []*kzg4844.Blob
	answer           func([]hexutil.Bytes) []hexutil.Bytes
	metaCalls        atomic.Int64
	lastQuery        atomic.Value
}

func (s *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/eth/v1/node/version":
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"version": "test/1"}})
	case "/eth/v1/beacon/genesis":
		s.metaCalls.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"genesis_time": strconv.FormatUint(s.genesis, 10)}})
	case "/eth/v1/config/spec":
		s.metaCalls.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"SECONDS_PER_SLOT": strconv.FormatUint(s.slotLen, 10)}})
	case "/eth/v1/beacon/blobs/" + strconv.FormatUint(s.slot, 10):
		s.lastQuery.Store(r.URL.Query()["versioned_hashes"])
		var out []hexutil.Bytes
		for _, b := range s.blobs {
			out = append(out, b[:])
		}
		if s.answer != nil {
			out = s.answer(out)
		}
		json.NewEncoder(w).Encode(map[string]any{"data": out})
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"code":404,"message":"not found"}`))
	}
}

func TestBeaconBlobsByHash(t *testing.T) {
	b1, b2 := dataBlob(t, []byte{0, 1, 2}), dataBlob(t, []byte{0, 3, 4})
	h1, h2 := mustHash(t, b1), mustHash(t, b2)
	srv := &blobServer{genesis: 1000, slotLen: 12, slot: 5, blobs: []*kzg4844.Blob{b2, b1}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	bc := dasource.NewBeacon(dasource.BeaconConfig{URL: hs.URL + "/", Timeout: 5 * time.Second})
	ctx := context.Background()
	if v, err := bc.NodeVersion(ctx); err != nil || v != "test/1" {
		t.Fatalf("version %q %v", v, err)
	}
	// Time 1060..1071 is slot 5; the node's order (b2, b1) is put back in request order.
	got, err := bc.BlobsByHash(ctx, 1065, []common.Hash{h1, h2})
	if err != nil {
		t.Fatal(err)
	}
	if *got[0] != *b1 || *got[1] != *b2 {
		t.Fatal("blobs not in request order")
	}
	if q := srv.lastQuery.Load().([]string); len(q) != 2 || q[0] != h1.Hex() || q[1] != h2.Hex() {
		t.Fatalf("query %v", q)
	}
	// Count and content are checked. (The cases fail at their first bad blob: KZG
	// commitments are slow under the race detector.)
	srv.answer = func(b []hexutil.Bytes) []hexutil.Bytes { return b[:1] }
	if _, err := bc.BlobsByHash(ctx, 1060, []common.Hash{h1, h2}); !errors.Is(err, dasource.ErrBlobMismatch) {
		t.Fatalf("short answer: %v", err)
	}
	srv.answer = func(b []hexutil.Bytes) []hexutil.Bytes { return []hexutil.Bytes{b[0], b[0]} }
	if _, err := bc.BlobsByHash(ctx, 1060, []common.Hash{h1, h2}); !errors.Is(err, dasource.ErrBlobMismatch) {
		t.Fatalf("a blob twice: %v", err)
	}
	srv.answer = func(b []hexutil.Bytes) []hexutil.Bytes {
		b[1] = append(hexutil.Bytes{}, b[1]...)
		b[1][100] ^= 1
		return b
	}
	if _, err := bc.BlobsByHash(ctx, 1060, []common.Hash{h1, h2}); !errors.Is(err, dasource.ErrBlobMismatch) {
		t.Fatalf("altered blob: %v", err)
	}
	srv.answer = func(b []hexutil.Bytes) []hexutil.Bytes { return []hexutil.Bytes{b[0][:100], b[1]} }
	if _, err := bc.BlobsByHash(ctx, 1060, []common.Hash{h1, h2}); !errors.Is(err, dasource.ErrBlobMismatch) {
		t.Fatalf("short blob: %v", err)
	}
	srv.answer = nil
	// Another slot has nothing: 404 is NotFound.
	if _, err := bc.BlobsByHash(ctx, 1000, []common.Hash{h1}); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("missing slot: %v", err)
	}
	if _, err := bc.BlobsByHash(ctx, 999, []common.Hash{h1}); err == nil {
		t.Fatal("time before genesis accepted")
	}
	if n := srv.metaCalls.Load(); n != 2 {
		t.Fatalf("genesis and spec fetched %d times, want once each", n)
	}
}

func TestBeaconDeadline(t *testing.T) {
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hs.Close()
	defer close(release)
	bc := dasource.NewBeacon(dasource.BeaconConfig{URL: hs.URL, Timeout: 200 * time.Millisecond})
	start := time.Now()
	if _, err := bc.Slot(context.Background(), 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung beacon node: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestBeaconRefusesOversizedAnswers(t *testing.T) {
	b1 := dataBlob(t, []byte{0, 1})
	srv := &blobServer{genesis: 0, slotLen: 1, slot: 3, blobs: []*kzg4844.Blob{b1, b1, b1, b1}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	bc := dasource.NewBeacon(dasource.BeaconConfig{URL: hs.URL})
	if _, err := bc.BlobsByHash(context.Background(), 3, []common.Hash{mustHash(t, b1)}); err == nil {
		t.Fatal("four blobs for one hash accepted")
	}
}
