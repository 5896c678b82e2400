package dasource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
)

// BeaconConfig configures a Beacon client.
type BeaconConfig struct {
	// URL is the beacon node's base URL (--l1.beacon), without /eth/v1.
	URL string
	// Timeout bounds each request; default 30 s (a response may carry several
	// 128 KiB blobs).
	Timeout time.Duration
	// HTTPClient defaults to a client of its own.
	HTTPClient *http.Client
}

// ErrBlobMismatch is returned when the beacon node's blobs are not the ones asked for:
// a count that differs, or a blob whose KZG commitment hashes to no requested hash.
var ErrBlobMismatch = errors.New("beacon blobs do not match the requested versioned hashes")

// Beacon reads blobs from an L1 beacon node's REST API. The genesis time and slot length
// are fetched once and kept. It is safe for concurrent use.
type Beacon struct {
	base    string
	timeout time.Duration
	client  *http.Client

	mu             sync.Mutex
	genesisTime    uint64
	secondsPerSlot uint64
}

// NewBeacon makes a client; it does not contact the node.
func NewBeacon(cfg BeaconConfig) *Beacon {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &Beacon{base: strings.TrimRight(cfg.URL, "/"), timeout: cfg.Timeout, client: cfg.HTTPClient}
}

// maxMetaBytes bounds the answers other than blobs: they are a few hundred bytes (the
// spec endpoint a few KiB on a real node).
const maxMetaBytes = 1 << 20

// get fetches path and decodes the JSON answer's data field into dest. A 404 wraps
// ethereum.NotFound, so callers can tell missing data from a failing node.
func (b *Beacon) get(ctx context.Context, path string, query url.Values, limit int64, dest any) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	u := b.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("beacon GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("beacon GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("beacon GET %s: read: %w", path, err)
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("beacon GET %s: answer over %d bytes", path, limit)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("beacon GET %s: %s: %w", path, abbreviate(body), ethereum.NotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("beacon GET %s: HTTP %d: %s", path, resp.StatusCode, abbreviate(body))
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("beacon GET %s: decode: %w", path, err)
	}
	if err := json.Unmarshal(env.Data, dest); err != nil {
		return fmt.Errorf("beacon GET %s: decode data: %w", path, err)
	}
	return nil
}

func abbreviate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// quotedUint reads the beacon API's decimal strings (plain numbers are accepted too).
type quotedUint uint64

func (q *quotedUint) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	if err != nil {
		return fmt.Errorf("not a decimal number: %s", b)
	}
	*q = quotedUint(v)
	return nil
}

// NodeVersion is the node's version string (a cheap liveness check at start).
func (b *Beacon) NodeVersion(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if err := b.get(ctx, "/eth/v1/node/version", nil, maxMetaBytes, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

// Slot is the beacon slot of an L1 block with the given timestamp.
func (b *Beacon) Slot(ctx context.Context, timestamp uint64) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.secondsPerSlot == 0 {
		var g struct {
			GenesisTime quotedUint `json:"genesis_time"`
		}
		if err := b.get(ctx, "/eth/v1/beacon/genesis", nil, maxMetaBytes, &g); err != nil {
			return 0, err
		}
		var spec struct {
			SecondsPerSlot quotedUint `json:"SECONDS_PER_SLOT"`
		}
		if err := b.get(ctx, "/eth/v1/config/spec", nil, maxMetaBytes, &spec); err != nil {
			return 0, err
		}
		if spec.SecondsPerSlot == 0 {
			return 0, errors.New("beacon spec: SECONDS_PER_SLOT is 0")
		}
		b.genesisTime, b.secondsPerSlot = uint64(g.GenesisTime), uint64(spec.SecondsPerSlot)
	}
	if timestamp < b.genesisTime {
		return 0, fmt.Errorf("L1 time %d is before the beacon genesis %d", timestamp, b.genesisTime)
	}
	return (timestamp - b.genesisTime) / b.secondsPerSlot, nil
}

// VersionedHash is the EIP-4844 versioned hash of a blob: its KZG commitment (kzg.go),
// hashed.
func VersionedHash(blob *kzg4844.Blob) (common.Hash, error) {
	c, err := blobCommitment(blob)
	if err != nil {
		return common.Hash{}, fmt.Errorf("blob KZG commitment: %w", err)
	}
	return kzg4844.CalcBlobHashV1(sha256.New(), &c), nil
}

// BlobsByHash fetches the blobs with the given versioned hashes from the block at L1 time
// l1Time and returns them in the order of hashes. Every blob is checked against its hash,
// so a node cannot hand over other data. A 404 (no such slot or blob) wraps
// ethereum.NotFound; a wrong count or a blob matching no hash wraps ErrBlobMismatch.
func (b *Beacon) BlobsByHash(ctx context.Context, l1Time uint64, hashes []common.Hash) ([]*kzg4844.Blob, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	slot, err := b.Slot(ctx, l1Time)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, h := range hashes {
		q.Add("versioned_hashes", h.Hex())
	}
	var data []hexutil.Bytes
	// Each blob is 2+2×131072 hex characters and quotes; allow some room for the envelope.
	limit := int64(len(hashes))*(2*blobSize+8) + 4096
	if err := b.get(ctx, "/eth/v1/beacon/blobs/"+strconv.FormatUint(slot, 10), q, limit, &data); err != nil {
		return nil, err
	}
	if len(data) != len(hashes) {
		return nil, fmt.Errorf("%w: slot %d: %d blobs for %d hashes", ErrBlobMismatch, slot, len(data), len(hashes))
	}
	out := make([]*kzg4844.Blob, len(hashes))
	for i, raw := range data {
		if int64(len(raw)) != blobSize {
			return nil, fmt.Errorf("%w: slot %d: blob %d has %d bytes", ErrBlobMismatch, slot, i, len(raw))
		}
		blob := new(kzg4844.Blob)
		copy(blob[:], raw)
		vh, err := VersionedHash(blob)
		if err != nil {
			return nil, fmt.Errorf("%w: slot %d: blob %d: %w", ErrBlobMismatch, slot, i, err)
		}
		// The answer's order is the node's; place each blob at the first unfilled
		// position with its hash (a block may carry the same blob twice).
		placed := false
		for j, h := range hashes {
			if h == vh && out[j] == nil {
				out[j], placed = blob, true
				break
			}
		}
		if !placed {
			return nil, fmt.Errorf("%w: slot %d: blob %d hashes to %s, not asked for", ErrBlobMismatch, slot, i, vh)
		}
	}
	return out, nil
}

const blobSize = int64(len(kzg4844.Blob{}))
