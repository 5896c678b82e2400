package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/store"
)

// FuzzRoutes drives the handler with arbitrary methods, paths and bodies: it must never
// panic, must answer only the documented codes, and every error but GET's 404 carries a
// JSON {"error": ...} body.
func FuzzRoutes(f *testing.F) {
	data := []byte("some frame")
	k := altda.Keccak256Commitment(data).String()
	f.Add("POST", "/put/"+k, data)
	f.Add("POST", "/put/"+k[2:]+"?commitment_mode=x", data)
	f.Add("POST", "/put", data)
	f.Add("POST", "/put/", []byte{})
	f.Add("GET", "/get/"+k, []byte(nil))
	f.Add("GET", "/get/0x01ff"+strings.Repeat("00", 32), []byte(nil))
	f.Add("GET", "/get/", []byte(nil))
	f.Add("GET", "/get/0x/../../etc", []byte(nil))
	f.Add("PUT", "/admin/faults", []byte(`{"primary":{"put":"error"}}`))
	f.Add("PUT", "/admin/faults", []byte(`{"secondary":{"latency_ms":99999999}}`))
	f.Add("DELETE", "/put/"+k, data)
	f.Add("GET", "/health", []byte(nil))
	f.Add("POST", "/put/0x0100", bytes.Repeat([]byte{1}, 300))

	s, err := New(Config{Primary: store.NewMemory(), Secondaries: []store.Store{store.NewMemory()},
		RepairDir: f.TempDir(), FaultsAdmin: true, MaxInputBytes: 256, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.queue.Close() })
	h := s.Handler()
	allowed := map[int]bool{200: true, 201: true, 400: true, 404: true, 405: true, 500: true, 503: true}

	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		req, err := http.NewRequest(method, "http://da"+path, bytes.NewReader(body))
		if err != nil {
			return // not an HTTP request a server could receive
		}
		if req.URL.Path == "/admin/faults" && method == "PUT" {
			return // a latency fault would only slow the fuzzer down
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s %s answered %d", method, path, rec.Code)
		}
		if rec.Code < 400 || (rec.Code == 404 && strings.HasPrefix(req.URL.Path, "/get/")) {
			return
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("%s %s: %d with body %q, want JSON {\"error\": ...}", method, path, rec.Code, rec.Body.Bytes())
		}
	})
}
