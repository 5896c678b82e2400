package devnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
)

func testBlob(seed byte) kzg4844.Blob {
	var b kzg4844.Blob
	for i := 0; i < len(b); i += 32 {
		b[i+1] = seed // field elements stay below the modulus with a zero top byte
		b[i+2] = byte(i / 32)
	}
	return b
}

// beaconGet GETs path from the beacon API and decodes the JSON body into out.
func beaconGet(ctx context.Context, t *testing.T, l1 *L1, path string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l1.BeaconURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode
}

func TestBeaconServesSealedBlobs(t *testing.T) {
	dir := t.TempDir()
	l1, err := StartL1(L1Config{DataDir: dir, Scheme: Path})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var version struct {
		Data struct{ Version string } `json:"data"`
	}
	var genesis struct {
		Data struct {
			GenesisTime string `json:"genesis_time"`
		} `json:"data"`
	}
	var spec struct {
		Data struct {
			SecondsPerSlot string `json:"SECONDS_PER_SLOT"`
		} `json:"data"`
	}
	if beaconGet(ctx, t, l1, "/eth/v1/node/version", &version) != 200 || version.Data.Version == "" {
		t.Fatalf("node/version %+v", version)
	}
	if beaconGet(ctx, t, l1, "/eth/v1/beacon/genesis", &genesis) != 200 || genesis.Data.GenesisTime != fmt.Sprint(l1.Genesis().Timestamp) {
		t.Fatalf("genesis %+v, L1 genesis time %d", genesis, l1.Genesis().Timestamp)
	}
	if beaconGet(ctx, t, l1, "/eth/v1/config/spec", &spec) != 200 || spec.Data.SecondsPerSlot != "1" {
		t.Fatalf("spec %+v", spec)
	}

	blobs := []kzg4844.Blob{testBlob(1), testBlob(2), testBlob(1)}
	rcpt, err := l1.SendBlobs(ctx, l1.Accounts()[3], common.Address{0xff}, blobs)
	if err != nil {
		t.Fatalf("send blobs: %v", err)
	}
	sealed := l1.Backend().BlockChain().GetBlockByHash(rcpt.BlockHash)
	hashes := sealed.Transactions()[0].BlobHashes()
	if len(hashes) != 3 || hashes[0] != hashes[2] {
		t.Fatalf("blob hashes %v", hashes)
	}
	// Another block after it, so the slot lookup must pick the right one.
	if _, err := l1.Mine(); err != nil {
		t.Fatal(err)
	}
	slot := l1.SlotOf(sealed.Time())
	check := func(l1 *L1) {
		var resp struct {
			Data []hexutil.Bytes `json:"data"`
		}
		path := fmt.Sprintf("/eth/v1/beacon/blobs/%d?versioned_hashes=%s&versioned_hashes=%s", slot, hashes[1], hashes[0])
		if code := beaconGet(ctx, t, l1, path, &resp); code != 200 {
			t.Fatalf("blobs: status %d", code)
		}
		if len(resp.Data) != 3 || string(resp.Data[0]) != string(blobs[0][:]) || string(resp.Data[1]) != string(blobs[1][:]) || string(resp.Data[2]) != string(blobs[2][:]) {
			t.Fatalf("blobs: %d returned, or in another order or content", len(resp.Data))
		}
		if code := beaconGet(ctx, t, l1, fmt.Sprintf("/eth/v1/beacon/blobs/%d", slot), &resp); code != 200 || len(resp.Data) != 3 {
			t.Fatalf("all blobs: status %d, %d blobs", code, len(resp.Data))
		}
		if code := beaconGet(ctx, t, l1, fmt.Sprintf("/eth/v1/beacon/blobs/%d?versioned_hashes=%s", slot, common.Hash{1}), nil); code != 404 {
			t.Fatalf("unknown blob: status %d", code)
		}
		if code := beaconGet(ctx, t, l1, fmt.Sprintf("/eth/v1/beacon/blobs/%d", slot+1000), nil); code != 404 {
			t.Fatalf("slot without a block: status %d", code)
		}
		if code := beaconGet(ctx, t, l1, "/eth/v1/beacon/blobs/x", nil); code != 400 {
			t.Fatalf("bad slot: status %d", code)
		}
		var empty struct {
			Data []hexutil.Bytes `json:"data"`
		}
		if code := beaconGet(ctx, t, l1, fmt.Sprintf("/eth/v1/beacon/blobs/%d", slot+1), &empty); code != 200 || len(empty.Data) != 0 {
			t.Fatalf("block without blobs: status %d, %d blobs", code, len(empty.Data))
		}
	}
	check(l1)
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	again := startTestL1(t, L1Config{DataDir: dir, Scheme: Path})
	check(again)
}

func TestBeaconSlotsAreDistinct(t *testing.T) {
	l1 := startTestL1(t, L1Config{})
	seen := map[uint64]bool{}
	for i := 0; i < 4; i++ {
		h, err := l1.Mine()
		if err != nil {
			t.Fatal(err)
		}
		if seen[l1.SlotOf(h.Time)] {
			t.Fatalf("block %d shares slot %d", h.Number, l1.SlotOf(h.Time))
		}
		seen[l1.SlotOf(h.Time)] = true
	}
	h, err := l1.MineWithGap(0)
	if err != nil {
		t.Fatal(err)
	}
	if seen[l1.SlotOf(h.Time)] {
		t.Fatalf("a zero-gap block shares slot %d", l1.SlotOf(h.Time))
	}
}

func TestBlobRetention(t *testing.T) {
	l1 := startTestL1(t, L1Config{BlobRetention: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rcpt, err := l1.SendBlobs(ctx, l1.Accounts()[4], common.Address{0xff}, []kzg4844.Blob{testBlob(7)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := l1.blobs.blobsOf(rcpt.BlockHash); !ok {
		t.Fatal("blobs not kept")
	}
	for i := 0; i < 3; i++ {
		if _, err := l1.Mine(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := l1.blobs.blobsOf(rcpt.BlockHash); ok {
		t.Fatal("blobs kept past the retention")
	}
}
