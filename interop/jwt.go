package interop

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/golang-jwt/jwt/v4"

	"github.com/opkit/opkit/internal/rpcserve"
)

// SecretLength is the size of a JWT secret in bytes.
const SecretLength = 32

// MaxIATDrift is how far a token's issued-at claim may be from the server's clock, either
// way, as in the Engine API.
const MaxIATDrift = 60 * time.Second

// Secret is the shared HS256 key of a supervisor and one node.
type Secret [SecretLength]byte

// ParseSecret reads the file form: 32 bytes hex, 0x optional, surrounding whitespace ignored.
func ParseSecret(data []byte) (Secret, error) {
	s := strings.TrimSpace(string(data))
	s = strings.TrimPrefix(s, "0x")
	if len(s) != 2*SecretLength {
		return Secret{}, fmt.Errorf("jwt secret: want %d hex characters, got %d", 2*SecretLength, len(s))
	}
	var out Secret
	if _, err := hex.Decode(out[:], []byte(s)); err != nil {
		return Secret{}, fmt.Errorf("jwt secret: %w", err)
	}
	return out, nil
}

// ReadSecret reads an existing secret file; the supervisor uses it, since a secret it made
// up could not match any node's.
func ReadSecret(path string) (Secret, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("read jwt secret: %w", err)
	}
	s, err := ParseSecret(data)
	if err != nil {
		return Secret{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LoadOrCreateSecret reads the secret file, or creates it with a fresh random secret
// (0x-hex, mode 0600) when it does not exist; this is what a node does.
func LoadOrCreateSecret(path string) (Secret, error) {
	s, err := ReadSecret(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if _, err := rand.Read(s[:]); err != nil {
		return Secret{}, fmt.Errorf("generate jwt secret: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return Secret{}, fmt.Errorf("create jwt secret directory: %w", err)
		}
	}
	// O_EXCL: if another process created the file meanwhile, use theirs.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return ReadSecret(path)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("create jwt secret: %w", err)
	}
	if _, err := f.WriteString(s.Hex()); err != nil {
		f.Close()
		return Secret{}, fmt.Errorf("write jwt secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return Secret{}, fmt.Errorf("write jwt secret: %w", err)
	}
	return s, nil
}

// Hex is the file form of the secret.
func (s Secret) Hex() string { return "0x" + hex.EncodeToString(s[:]) }

// NewToken signs a token issued at now.
func (s Secret) NewToken(now time.Time) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iat": now.Unix()})
	out, err := tok.SignedString(s[:])
	if err != nil {
		return "", fmt.Errorf("sign jwt: %w", err)
	}
	return out, nil
}

// HTTPAuth makes an RPC client send a fresh token with every HTTP request and websocket
// upgrade.
func (s Secret) HTTPAuth() rpc.HTTPAuth {
	return func(h http.Header) error {
		tok, err := s.NewToken(time.Now())
		if err != nil {
			return err
		}
		h.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// iatClaims checks only what the protocol asks for: an issued-at time near now.
type iatClaims struct {
	IssuedAt *json.Number `json:"iat"`
	now      time.Time
}

func (c *iatClaims) Valid() error {
	if c.IssuedAt == nil {
		return errors.New("missing issued-at claim")
	}
	iat, err := c.IssuedAt.Int64()
	if err != nil {
		f, ferr := c.IssuedAt.Float64()
		if ferr != nil {
			return fmt.Errorf("issued-at claim %q is not a number", c.IssuedAt.String())
		}
		iat = int64(f)
	}
	drift := c.now.Sub(time.Unix(iat, 0))
	if drift > MaxIATDrift || drift < -MaxIATDrift {
		return fmt.Errorf("stale token: issued-at %d is %s from now", iat, drift.Round(time.Second))
	}
	return nil
}

// VerifyToken checks a bearer token signed with s and issued within MaxIATDrift of now.
func (s Secret) VerifyToken(token string, now time.Time) error {
	claims := &iatClaims{now: now}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithJSONNumber())
	_, err := parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return s[:], nil })
	if err != nil {
		return fmt.Errorf("invalid token: %w", err)
	}
	return nil
}

// AuthHandler refuses, with 401 and a JSON error, every request without a valid bearer
// token; a websocket is checked once, at its upgrade request.
func AuthHandler(s Secret, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			rpcserve.Refuse(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		if err := s.VerifyToken(strings.TrimSpace(token), time.Now()); err != nil {
			rpcserve.Refuse(w, http.StatusUnauthorized, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}
