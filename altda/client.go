package altda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
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
	// ErrTimeout: no answer within the deadline (PutTimeout, GetTimeout or the caller's
	// context deadline). A PUT may or may not have been stored; resending it is safe,
	// because PUTs are idempotent. Such errors are *TransportError values and also match
	// context.DeadlineExceeded.
	ErrTimeout = errors.New("altda: timeout")
	// ErrConnection: the request got no answer for another reason (connection refused or
	// reset, a broken answer). Such errors are *TransportError values.
	ErrConnection = errors.New("altda: connection failed")
	// ErrResponseTooLarge: a GET answer over MaxGetBytes. It also matches ErrServer.
	ErrResponseTooLarge = fmt.Errorf("%w: answer over the size limit", ErrServer)
)

// TransportError is a request that got no HTTP answer: Kind is ErrTimeout or
// ErrConnection, Err the cause.
type TransportError struct {
	Kind error
	Op   string // "PUT" or "GET"
	URL  string
	Err  error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%v: %s %s: %v", e.Kind, e.Op, e.URL, e.Err)
}

func (e *TransportError) Unwrap() []error { return []error{e.Kind, e.Err} }

// transportError classifies a failed round trip or body read. A cancellation by the
// caller is passed through as is: it is not the server's doing.
func transportError(op, url string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("altda: %s %s: %w", op, url, err)
	}
	kind := ErrConnection
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		kind = ErrTimeout
	}
	return &TransportError{Kind: kind, Op: op, URL: url, Err: err}
}

// Outcome is what an answer means for the writer (or reader), one value per case it
// must handle differently. Classify computes it from an error of Put or Get.
type Outcome int

const (
	// OutcomeOK: 200. For a PUT: stored in every store; post the commitment.
	OutcomeOK Outcome = iota
	// OutcomePartial: 201. The commitment (returned by Put) is valid and the data is in
	// the primary store; resend the same body, with backoff, until it answers 200.
	OutcomePartial
	// OutcomeUnavailable: 503. Fail over (send this channel to L1) and try again no
	// sooner than RetryAfter.
	OutcomeUnavailable
	// OutcomeTooLarge: the body is over the server's limit (400 with code too_large, or
	// refused before sending): a configuration error, not worth a retry.
	OutcomeTooLarge
	// OutcomeBadRequest: any other 400 (or an empty input refused before sending): a bug
	// on the client side.
	OutcomeBadRequest
	// OutcomeNotFound: 404 on GET.
	OutcomeNotFound
	// OutcomeServerError: a 5xx other than 503, an unexpected status, or a malformed or
	// oversized answer. Retry with backoff.
	OutcomeServerError
	// OutcomeTimeout: no answer within the deadline. Retry with backoff.
	OutcomeTimeout
	// OutcomeConnection: no answer at all (refused, reset). Retry with backoff.
	OutcomeConnection
	// OutcomeCanceled: the caller's context was canceled.
	OutcomeCanceled
	// OutcomeOther: an error that did not come from a Client call.
	OutcomeOther
)

var outcomeNames = [...]string{"ok", "partial", "unavailable", "too_large", "bad_request", "not_found", "server_error", "timeout", "connection", "canceled", "other"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// Classify maps an error from Put or Get (nil included) to its Outcome.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrPartial):
		return OutcomePartial
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	case errors.Is(err, ErrTooLarge):
		return OutcomeTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrEmptyInput):
		return OutcomeBadRequest
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrServer):
		return OutcomeServerError
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, ErrConnection):
		return OutcomeConnection
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	}
	return OutcomeOther
}

// RetryAfter is the delay a 503 asked for (the retry_after field, else the Retry-After
// header); ok is false when err is not a 503 or the server gave no delay.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var re *ResponseError
	if errors.As(err, &re) && errors.Is(re.Kind, ErrUnavailable) && re.RetryAfter > 0 {
		return re.RetryAfter, true
	}
	return 0, false
}

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
	// MaxGetBytes is the largest GET answer read (default: MaxInputBytes when set, else
	// DefaultMaxGetBytes). A larger one is an error, not a large allocation.
	MaxGetBytes int
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

// DefaultMaxGetBytes bounds a GET answer when neither MaxGetBytes nor MaxInputBytes is
// set: far above any frame, far below what would hurt.
const DefaultMaxGetBytes = 16 << 20

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
	if cfg.MaxGetBytes <= 0 {
		cfg.MaxGetBytes = DefaultMaxGetBytes
		if cfg.MaxInputBytes > 0 {
			cfg.MaxGetBytes = cfg.MaxInputBytes
		}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                  nil, // loopback and private DA servers must not go through a proxy
			MaxIdleConnsPerHost:    64,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10, // the answers carry a few short headers
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
		return nil, transportError("PUT", url, err)
	}
	defer drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		if want != nil {
			return want, nil
		}
		// One byte over the longest commitment, so that a longer answer is refused.
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCommitmentLen+1))
		if err != nil {
			return nil, transportError("PUT", url, err)
		}
		got, err := DecodeCommitment(body)
		if err != nil {
			return nil, fmt.Errorf("altda: server answered PUT with a bad commitment: %w: %w", ErrServer, err)
		}
		return got, nil
	default:
		rerr := responseError(resp)
		if errors.Is(rerr, ErrPartial) {
			// In keccak mode the commitment is the one computed here, which the server
			// checked the body against; a different one in its answer is not trusted.
			if want != nil {
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
		return nil, transportError("GET", url, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	limit := int64(c.cfg.MaxGetBytes)
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: GET %s declares %d bytes, limit %d", ErrResponseTooLarge, url, resp.ContentLength, limit)
	}
	data, err := readAtMost(resp.Body, resp.ContentLength, limit)
	if errors.Is(err, ErrResponseTooLarge) {
		return nil, fmt.Errorf("%w: GET %s answered more than %d bytes", err, url, limit)
	}
	if err != nil {
		return nil, transportError("GET", url, err)
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

// readAtMost reads r to its end, failing with ErrResponseTooLarge past limit bytes. A
// declared length (>= 0) sizes the buffer; it has been checked against the limit.
func readAtMost(r io.Reader, declared, limit int64) ([]byte, error) {
	if declared >= 0 {
		buf := make([]byte, declared)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, ErrResponseTooLarge
	}
	return data, nil
}

// drainClose lets the connection be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
