package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/golang-jwt/jwt/v4"
)

func TestLoadOrCreateSecretWritesHexFileOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "jwt.hex")
	s1, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", info.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "0x") || len(data) != 66 {
		t.Fatalf("secret file %q is not 0x + 64 hex", data)
	}
	if s1 == (Secret{}) {
		t.Fatal("secret is all zero")
	}
	s2, err := LoadOrCreateSecret(path)
	if err != nil || s2 != s1 {
		t.Fatalf("second load gave %x, %v; want the same secret", s2, err)
	}
}

func TestReadSecretRequiresExistingFile(t *testing.T) {
	_, err := ReadSecret(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want not-exist", err)
	}
}

func TestParseSecretForms(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for _, in := range []string{hex64, "0x" + hex64, "  0x" + hex64 + "\n"} {
		s, err := ParseSecret([]byte(in))
		if err != nil || s[0] != 0xab {
			t.Fatalf("ParseSecret(%q) = %x, %v", in, s, err)
		}
	}
	for _, in := range []string{"", "0x", hex64[:62], hex64 + "00", strings.Repeat("zz", 32)} {
		if _, err := ParseSecret([]byte(in)); err == nil {
			t.Fatalf("ParseSecret(%q) accepted", in)
		}
	}
}

func TestVerifyToken(t *testing.T) {
	var s, other Secret
	s[0], other[0] = 1, 2
	now := time.Unix(1_700_000_000, 0)
	sign := func(sec Secret, at time.Time) string {
		tok, err := sec.NewToken(at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if err := s.VerifyToken(sign(s, now), now); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	if err := s.VerifyToken(sign(s, now.Add(-59*time.Second)), now); err != nil {
		t.Fatalf("token 59s old refused: %v", err)
	}
	for name, tok := range map[string]string{
		"wrong secret":  sign(other, now),
		"stale iat":     sign(s, now.Add(-61*time.Second)),
		"future iat":    sign(s, now.Add(61*time.Second)),
		"garbage":       "not.a.token",
		"missing iat":   mustSign(t, jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"foo": 1}), s),
		"alg none":      mustSignNone(t),
		"other hs alg":  mustSign(t, jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"iat": now.Unix()}), s),
		"string iat":    mustSign(t, jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iat": "now"}), s),
		"empty":         "",
		"two dots only": "..",
	} {
		if err := s.VerifyToken(tok, now); err == nil {
			t.Errorf("%s: token accepted", name)
		}
	}
}

func mustSign(t *testing.T, tok *jwt.Token, s Secret) string {
	t.Helper()
	out, err := tok.SignedString(s[:])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustSignNone(t *testing.T) string {
	t.Helper()
	out, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iat": time.Now().Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuthHandlerAnswers401WithJSON(t *testing.T) {
	var s Secret
	s[5] = 9
	h := AuthHandler(s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for name, header := range map[string]string{
		"no header":    "",
		"not bearer":   "Basic abc",
		"stale":        "Bearer " + mustTok(t, s, time.Now().Add(-2*time.Minute)),
		"wrong secret": "Bearer " + mustTok(t, Secret{1}, time.Now()),
	} {
		req := httptest.NewRequest("POST", "/", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body struct{ Error string }
		if rec.Code != 401 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error == "" {
			t.Errorf("%s: got %d %q, want 401 with a JSON error", name, rec.Code, rec.Body.String())
		}
	}
	req := httptest.NewRequest("POST", "/", nil)
	req.Header.Set("Authorization", "Bearer "+mustTok(t, s, time.Now()))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 204 {
		t.Fatalf("valid token: got %d", rec.Code)
	}
}

func mustTok(t *testing.T, s Secret, at time.Time) string {
	t.Helper()
	tok, err := s.NewToken(at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestChainIDWireForm(t *testing.T) {
	data, err := json.Marshal(ChainID(901))
	if err != nil || string(data) != `"901"` {
		t.Fatalf("marshal = %s, %v; want \"901\"", data, err)
	}
	for in, want := range map[string]ChainID{`"901"`: 901, `"0x385"`: 901, `"18446744073709551615"`: ^ChainID(0)} {
		var id ChainID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Fatalf("unmarshal %s = %d, %v", in, id, err)
		}
	}
	for _, in := range []string{`"0x"`, `"-1"`, `"abc"`, `"18446744073709551616"`, `901`} {
		var id ChainID
		if err := json.Unmarshal([]byte(in), &id); err == nil {
			t.Fatalf("unmarshal %s accepted", in)
		}
	}
}

func TestDependencySet(t *testing.T) {
	s, err := ParseDependencySet([]byte(`{"dependencies":{"902":{},"901":{"activationTime":0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Chains(); len(got) != 2 || got[0] != 901 || got[1] != 902 || !s.HasChain(902) || s.HasChain(903) {
		t.Fatalf("chains %v", got)
	}
	out, _ := json.Marshal(s)
	if string(out) != `{"dependencies":{"901":{},"902":{}}}` {
		t.Fatalf("marshal %s", out)
	}
	for _, bad := range []string{``, `{}`, `{"dependencies":{}}`, `{"dependencies":{"x":{}}}`, `{"dependencies":{"1":[]}}`, `{"dependencies":{"1":{},"0x1":{}}}`} {
		if _, err := ParseDependencySet([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	path := filepath.Join(t.TempDir(), "deps.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if s2, err := LoadDependencySet(path); err != nil || !s2.HasChain(901) {
		t.Fatalf("load: %v", err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte(" "), maxDependencySetSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDependencySet(path); err == nil {
		t.Fatal("oversized file accepted")
	}
}

func TestExecutingMessageRoundTrip(t *testing.T) {
	initLog := &types.Log{Address: common.Address{7}, Topics: []common.Hash{{1}, {2}}, Data: []byte("hello")}
	m := ExecutingMessage{
		Identifier:  Identifier{Origin: initLog.Address, BlockNumber: 12, LogIndex: 3, Timestamp: 1234, ChainID: 901},
		PayloadHash: PayloadHash(initLog),
	}
	got, err := DecodeExecutingMessage(EncodeExecutingMessage(m))
	if err != nil || *got != m {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, m)
	}
	other := &types.Log{Address: common.Address{1}, Topics: []common.Hash{ExecutingMessageTopic}}
	if _, err := DecodeExecutingMessage(other); !errors.Is(err, ErrNotExecutingMessage) {
		t.Fatalf("log of another contract: %v", err)
	}
	bad := EncodeExecutingMessage(m)
	bad.Data[0] = 1 // dirty address padding
	if _, err := DecodeExecutingMessage(bad); err == nil || errors.Is(err, ErrNotExecutingMessage) {
		t.Fatalf("dirty padding: %v", err)
	}
}

func TestIsNotFound(t *testing.T) {
	for _, err := range []error{ErrNotFound, NotFoundError("x"), errors.New("header not found"), &Error{Code: CodeNotFound, Message: "gone"}} {
		if !IsNotFound(err) {
			t.Errorf("IsNotFound(%v) = false", err)
		}
	}
	for _, err := range []error{nil, errors.New("connection refused"), &Error{Code: CodeConflictingBlock, Message: "conflicting block"}} {
		if IsNotFound(err) {
			t.Errorf("IsNotFound(%v) = true", err)
		}
	}
}
