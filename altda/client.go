package altda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Outcome kinds. A *ResponseError wraps exactly one of them, so callers branch with
// errors.Is and read the details (retry delay, commitment) with errors.As.
var (
	// ErrNotFound: the server has no data for the commitment (404). op-node treats the
	// input as possibly challenged, so it must never stand for a transient failure.
	ErrNotFound = errors.New("altda: not found")
	// ErrUnavailable: the server asks the writer to go elsewhere for a while (503);
	// RetryAfter says for how long when the server said so.
	ErrUnavailable = errors.New("altda: unavailable")
	// ErrPartial: the data is in the primary store but not yet in every required
	// secondary (201). The commitment is valid; resend the same body to complete it.
	ErrPartial = errors.New("altda: partial success")
	// ErrBadRequest: the server refused the request as malformed (400).
	ErrBadRequest = errors.New("altda: bad request")
	// ErrTooLarge: the body is over the server's input limit (400 with code too_large,
	// or refused before sending). It also matches ErrBadRequest. It means the writer's
	// frame size setting is wrong, not that the server is unwell.
	ErrTooLarge = fmt.Errorf("%w: input too large", ErrBadRequest)
	// ErrServer: any other answer (5xx other than 503, unexpected codes).
	ErrServer = errors.New("altda: server error")
	// ErrEmptyInput: an empty preimage is never sent, as the OP Stack client also refuses.
	ErrEmptyInput = errors.New("altda: empty input")
)

// ResponseError describes a non-200 answer.
type ResponseError struct {
	Kind       error
	Status     int
	Message    string
	RetryAfter time.Duration // for ErrUnavailable: 0 when the server gave no delay
	Commitment Commitment    // for ErrPartial
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v (HTTP %d)", e.Kind, e.Status)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

func (e *ResponseError) Unwrap() error { return e.Kind }

// Mode selects how commitments are made.
type Mode int

const (
	// KeccakMode computes keccak256 commitments locally and PUTs to /put/<commitment>.
	KeccakMode Mode = iota
	// GenericMode PUTs to /put and uses the commitment the server returns.
	GenericMode
)

// ClientConfig configures a Client. Zero timeouts mean the defaults below, never "no
// timeout": a hung server must not hang a batcher.
type ClientConfig struct {
	URL           string
	Mode          Mode
	PutTimeout    time.Duration // default 30s
	GetTimeout    time.Duration // default 30s
	MaxInputBytes int           // refuse larger inputs before sending; 0 = no local check
	// VerifyGets checks fetched data against verifiable commitments (keccak256 and
	// content-addressed generic).
	VerifyGets bool
	HTTPClient *http.Client // default: a client with its own transport
}

// Client talks to an AltDA server. It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	http *http.Client
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// NewClient returns a client for the server at cfg.URL.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("altda: client needs a server URL")
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.PutTimeout <= 0 {
		cfg.PutTimeout = 30 * time.Second
	}
	if cfg.GetTimeout <= 0 {
		cfg.GetTimeout = 30 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // loopback and private DA servers must not go through a proxy
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	return &Client{cfg: cfg, http: hc}, nil
}

// Put stores data and returns its commitment. On a partial success it returns the
// commitment together with an error wrapping ErrPartial.
func (c *Client) Put(ctx context.Context, data []byte) (Commitment, error) {
	if len(data) == 0 {
		return nil, ErrEmptyInput
	}
	if c.cfg.MaxInputBytes > 0 && len(data) > c.cfg.MaxInputBytes {
		return nil, &ResponseError{Kind: ErrTooLarge, Message: fmt.Sprintf("%d bytes is over the %d-byte limit", len(data), c.cfg.MaxInputBytes)}
	}
	url := c.cfg.URL + "/put"
	var want Commitment
	if c.cfg.Mode == KeccakMode {
		want = Keccak256Commitment(data)
		url += "/" + want.String()
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PutTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("altda: build PUT request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("altda: PUT %s: %w", url, err)
	}
	defer drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		if want != nil {
			return want, nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCommitmentLen+1))
		if err != nil {
			return nil, fmt.Errorf("altda: read PUT answer: %w", err)
		}
		got, err := DecodeCommitment(body)
		if err != nil {
			return nil, fmt.Errorf("altda: server answered PUT with a bad commitment: %w", err)
		}
		return got, nil
	default:
		rerr := responseError(resp)
		if errors.Is(rerr, ErrPartial) {
			if rerr.Commitment == nil {
				rerr.Commitment = want
			}
			if rerr.Commitment == nil {
				return nil, fmt.Errorf("altda: partial success answer carries no commitment: %w", rerr)
			}
			return rerr.Commitment, rerr
		}
		return nil, rerr
	}
}

// Get fetches the data for a commitment.
func (c *Client) Get(ctx context.Context, comm Commitment) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.GetTimeout)
	defer cancel()
	url := c.cfg.URL + "/get/" + comm.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("altda: build GET request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("altda: GET %s: %w", url, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("altda: read GET answer: %w", err)
	}
	if c.cfg.VerifyGets && comm.Verifiable() {
		if err := comm.Verify(data); err != nil {
			return nil, fmt.Errorf("altda: GET %s: %w", comm, err)
		}
	}
	return data, nil
}

// errorBody is the JSON of every non-200 answer from opkit's server; the fields of the
// issue #434 extensions are all optional, so a plain-text body from another server
// still yields a typed outcome.
type errorBody struct {
	Error      string `json:"error"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Status     string `json:"status"`
	Commitment string `json:"commitment"`
	RetryAfter *int64 `json:"retry_after"`
}

func responseError(resp *http.Response) *ResponseError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body errorBody
	jsonOK := json.Unmarshal(raw, &body) == nil
	e := &ResponseError{Status: resp.StatusCode}
	switch {
	case jsonOK && body.Error != "":
		e.Message = body.Error
	case jsonOK && body.Message != "":
		e.Message = body.Message
	case !jsonOK:
		e.Message = strings.TrimSpace(string(raw))
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		e.Kind = ErrNotFound
	case http.StatusCreated:
		e.Kind = ErrPartial
		if body.Commitment != "" {
			if c, err := ParseCommitment(body.Commitment); err == nil {
				e.Commitment = c
			}
		}
	case http.StatusServiceUnavailable:
		e.Kind = ErrUnavailable
		e.RetryAfter = retryAfter(body.RetryAfter, resp.Header.Get("Retry-After"))
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		e.Kind = ErrBadRequest
		if body.Code == "too_large" || resp.StatusCode == http.StatusRequestEntityTooLarge {
			e.Kind = ErrTooLarge
		}
	default:
		e.Kind = ErrServer
	}
	return e
}

// retryAfter prefers the JSON field and falls back to the header (delay-seconds or an
// HTTP date).
func retryAfter(field *int64, header string) time.Duration {
	const maxSeconds = math.MaxInt64 / int64(time.Second)
	if field != nil && *field > 0 {
		return time.Duration(min(*field, maxSeconds)) * time.Second
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	if n, err := strconv.ParseInt(header, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, maxSeconds)) * time.Second
	}
	if t, err := http.ParseTime(header); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// drainClose lets the connection be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
