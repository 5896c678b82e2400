package managed_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/interop/managed/memchain"
)

// FuzzRequestBody sends arbitrary bodies to the interop endpoint: every answer must be a
// JSON document with a status below 500, and the server must keep serving.
func FuzzRequestBody(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"interop_chainID","params":[]}`,
		`{"jsonrpc":"2.0","id":1,"method":"interop_l2BlockRefByNumber","params":[18446744073709551615]}`,
		`{"jsonrpc":"2.0","id":1,"method":"interop_reset","params":[{},{},{},{},{}]}`,
		`{"jsonrpc":"2.0","id":1,"method":"interop_updateCrossSafe","params":[{"hash":"0x00","number":1}]}`,
		`{"jsonrpc":"2.0","id":1,"method":"interop_invalidateBlock","params":[null]}`,
		`[{"jsonrpc":"2.0","id":1,"method":"interop_pullEvent"},{"jsonrpc":"2.0","id":2,"method":"interop_subscribe","params":["events"]}]`,
		`{"jsonrpc":"2.0","id":1,"method":"interop_provideL1","params":[{"hash":"0x1","number":"0x1"}]}`,
		`{`, ``, `null`,
	} {
		f.Add([]byte(seed))
	}
	chain := memchain.New(901, 2000, 2, anchorL1)
	srv, err := managed.NewServer(managed.Config{Secret: testSecret}, chain)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	chain.SetSink(srv)
	chain.AddBlock(anchorL1.ID())
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := testSecret.NewToken(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", srv.HTTPEndpoint(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("server did not answer: %v", err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, out)
		}
		if len(out) > 0 && !json.Valid(out) {
			t.Fatalf("answer is not JSON: %q", out)
		}
	})
}
