package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/devnet"
)

// TestGetterAPI checks debug_dbGet's key forms and its refusals, and the server's
// handling of bad requests.
func TestGetterAPI(t *testing.T) {
	t.Parallel()
	hot, _ := startHot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	load := devnet.NewLoad(hot, devnet.LoadConfig{TxsPerBlock: 8, Seed: 8})
	if err := load.MineBlocks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, hot.HTTPEndpoint(), t.TempDir(), 100)
	defer closeCollector(t, c)
	srv := startServer(t, c)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	col := dial(t, srv.HTTPURL())
	b, err := c.Store().Block(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Codes) == 0 {
		t.Fatal("block 3 loads no code")
	}
	code := b.Codes[0]
	for _, key := range []string{code.Hex(), "0x63" + code.Hex()[2:]} {
		var got hexutil.Bytes
		if err := col.CallContext(ctx, &got, "debug_dbGet", key); err != nil {
			t.Fatalf("debug_dbGet %s: %v", key, err)
		}
		if crypto.Keccak256Hash(got) != code {
			t.Fatalf("debug_dbGet %s returned a value hashing to %s", key, crypto.Keccak256Hash(got))
		}
	}
	var got hexutil.Bytes
	if err := col.CallContext(ctx, &got, "debug_dbGet", b.Root.Hex()); err != nil || crypto.Keccak256Hash(got) != b.Root {
		t.Fatalf("state root node: %x, %v", got, err)
	}
	for key, want := range map[string]string{
		"0x" + strings.Repeat("ab", 32): "not found",
		"0x1234":                        "32-byte hash",
		"0x64" + code.Hex()[2:]:         "32-byte hash",
		"zz":                            "key",
	} {
		err := col.CallContext(ctx, &got, "debug_dbGet", key)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("debug_dbGet %s: error %v, want one mentioning %q", key, err, want)
		}
	}
	// Malformed and oversized requests get clear errors, not a crash.
	post := func(body []byte) (int, string) {
		resp, err := http.Post(srv.HTTPURL(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	if code, body := post([]byte(`{"jsonrpc":"2.0","id":1,"method":"debug_dbGet","params":[`)); !strings.Contains(body, "error") {
		t.Fatalf("truncated JSON: %d %s", code, body)
	}
	if code, _ := post(bytes.Repeat([]byte("x"), 6<<20)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("6 MiB body: status %d, want 413", code)
	}
	var status map[string]any
	resp, err := http.Get(srv.HTTPURL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || status["last"] == nil {
		t.Fatalf("/health %d %v", resp.StatusCode, status)
	}
}
