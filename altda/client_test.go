package altda

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// scripted answers every request with a fixed status, headers and body: fault
// injection for the client's outcome mapping. The client against the real server is
// tested in the server package.
func scripted(t *testing.T, status int, header map[string]string, body string) (*Client, *[]*http.Request) {
	t.Helper()
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		seen = append(seen, r)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientConfig{URL: srv.URL + "/", PutTimeout: 5 * time.Second, GetTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, &seen
}

func TestClientOutcomes(t *testing.T) {
	ctx := context.Background()
	data := []byte("preimage")
	comm := Keccak256Commitment(data)

	t.Run("404 is not found", func(t *testing.T) {
		c, _ := scripted(t, 404, nil, "")
		if _, err := c.Get(ctx, comm); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("503 with retry_after", func(t *testing.T) {
		c, _ := scripted(t, 503, map[string]string{"Retry-After": "3"}, `{"error":"down","retry_after":7}`)
		_, err := c.Put(ctx, data)
		var re *ResponseError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &re) || re.RetryAfter != 7*time.Second || re.Message != "down" {
			t.Fatalf("got %v (%+v); JSON retry_after wins over the header", err, re)
		}
	})
	t.Run("503 with only the header", func(t *testing.T) {
		c, _ := scripted(t, 503, map[string]string{"Retry-After": "3"}, `plain text`)
		_, err := c.Put(ctx, data)
		var re *ResponseError
		if !errors.As(err, &re) || re.RetryAfter != 3*time.Second {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("503 with no delay", func(t *testing.T) {
		c, _ := scripted(t, 503, nil, `{"error":"down"}`)
		_, err := c.Put(ctx, data)
		var re *ResponseError
		if !errors.As(err, &re) || re.RetryAfter != 0 || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("201 partial keeps the commitment", func(t *testing.T) {
		c, _ := scripted(t, 201, nil, `{"commitment":"`+comm.String()+`","status":"partial","message":"s3 down"}`)
		got, err := c.Put(ctx, data)
		if !errors.Is(err, ErrPartial) || !bytes.Equal(got, comm) {
			t.Fatalf("got %s, %v", got, err)
		}
	})
	t.Run("201 generic without a commitment is an error", func(t *testing.T) {
		c, _ := scripted(t, 201, nil, `{}`)
		c.cfg.Mode = GenericMode
		got, err := c.Put(ctx, data)
		if err == nil || got != nil {
			t.Fatalf("got %s, %v", got, err)
		}
	})
	t.Run("400 too large", func(t *testing.T) {
		c, _ := scripted(t, 400, nil, `{"error":"body is over","code":"too_large"}`)
		_, err := c.Put(ctx, data)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrBadRequest) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("400 mismatch is a bad request, not too large", func(t *testing.T) {
		c, _ := scripted(t, 400, nil, `{"error":"mismatch"}`)
		_, err := c.Put(ctx, data)
		if !errors.Is(err, ErrBadRequest) || errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("500 is a server error", func(t *testing.T) {
		c, _ := scripted(t, 500, nil, `{"error":"disk"}`)
		_, err := c.Put(ctx, data)
		if !errors.Is(err, ErrServer) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("keccak mode route and content type", func(t *testing.T) {
		c, seen := scripted(t, 200, nil, "")
		got, err := c.Put(ctx, data)
		if err != nil || !bytes.Equal(got, comm) {
			t.Fatal(got, err)
		}
		r := (*seen)[0]
		if r.URL.Path != "/put/"+comm.String() || r.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("sent %s %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
	})
	t.Run("generic mode reads raw commitment bytes", func(t *testing.T) {
		gen := ContentAddressedGeneric(0xff, data)
		c, seen := scripted(t, 200, nil, string(gen))
		c.cfg.Mode = GenericMode
		got, err := c.Put(ctx, data)
		if err != nil || !bytes.Equal(got, gen) || (*seen)[0].URL.Path != "/put" {
			t.Fatalf("got %s, %v", got, err)
		}
	})
	t.Run("generic mode rejects a garbage answer", func(t *testing.T) {
		c, _ := scripted(t, 200, nil, "\x07junk")
		c.cfg.Mode = GenericMode
		if _, err := c.Put(ctx, data); !errors.Is(err, ErrInvalidCommitment) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("get verifies", func(t *testing.T) {
		c, _ := scripted(t, 200, nil, "tampered")
		c.cfg.VerifyGets = true
		if _, err := c.Get(ctx, comm); !errors.Is(err, ErrCommitmentMismatch) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("refusals before sending", func(t *testing.T) {
		c, seen := scripted(t, 200, nil, "")
		if _, err := c.Put(ctx, nil); !errors.Is(err, ErrEmptyInput) {
			t.Fatalf("empty: %v", err)
		}
		c.cfg.MaxInputBytes = 4
		if _, err := c.Put(ctx, data); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("large: %v", err)
		}
		if len(*seen) != 0 {
			t.Fatal("a refused request was sent")
		}
	})
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, _ := NewClient(ClientConfig{URL: srv.URL, GetTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Get(context.Background(), Keccak256Commitment([]byte("x")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout of 100ms took %s", d)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	n := int64(5)
	if d := retryAfter(&n, "9"); d != 5*time.Second {
		t.Fatal(d)
	}
	if d := retryAfter(nil, "9"); d != 9*time.Second {
		t.Fatal(d)
	}
	if d := retryAfter(nil, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); d < 59*time.Minute {
		t.Fatal(d)
	}
	huge := int64(1 << 62)
	if d := retryAfter(&huge, ""); d <= 0 {
		t.Fatalf("overflowing retry_after gave %s", d)
	}
	if d := retryAfter(nil, "-3"); d != 0 {
		t.Fatal(d)
	}
}

// A GET answer is read up to a bound: a server (or anything in between) that streams
// without end gets an error, not the client's memory. Both with and without a declared
// length.
func TestClientGetIsBounded(t *testing.T) {
	const limit = 4096
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("declared") != "" {
			w.Header().Set("Content-Length", "100000000")
		}
		chunk := make([]byte, 32<<10)
		for i := 0; i < 256; i++ { // 8 MiB, unless the client hangs up first
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	comm := Keccak256Commitment([]byte("x"))
	for _, declared := range []bool{false, true} {
		c, err := NewClient(ClientConfig{URL: srv.URL, MaxGetBytes: limit, GetTimeout: 10 * time.Second,
			HTTPClient: &http.Client{Transport: rewriteQuery{declared: declared}}})
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.Get(context.Background(), comm)
		if !errors.Is(err, ErrResponseTooLarge) || Classify(err) != OutcomeServerError || data != nil {
			t.Fatalf("declared length %v: GET of an endless answer: %d bytes, %v; want ErrResponseTooLarge", declared, len(data), err)
		}
	}
	// The default bound follows MaxInputBytes.
	c, _ := NewClient(ClientConfig{URL: srv.URL, MaxInputBytes: 1000})
	if c.cfg.MaxGetBytes != 1000 {
		t.Fatalf("MaxGetBytes defaulted to %d with MaxInputBytes 1000", c.cfg.MaxGetBytes)
	}
	if c, _ := NewClient(ClientConfig{URL: srv.URL}); c.cfg.MaxGetBytes != DefaultMaxGetBytes {
		t.Fatalf("MaxGetBytes defaulted to %d", c.cfg.MaxGetBytes)
	}
}

// rewriteQuery adds ?declared=1 to each request when set, on a plain transport.
type rewriteQuery struct{ declared bool }

func (rq rewriteQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if rq.declared {
		r = r.Clone(r.Context())
		r.URL.RawQuery = "declared=1"
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Each answer a batcher must handle differently is its own Outcome, with what it needs:
// the commitment of a 201, the delay of a 503 (field or header), and timeouts and
// refused connections apart from server errors.
func TestClassifyOutcomes(t *testing.T) {
	ctx := context.Background()
	data := []byte("preimage")
	comm := Keccak256Commitment(data)
	for _, c := range []struct {
		status int
		header map[string]string
		body   string
		want   Outcome
		retry  time.Duration
	}{
		{200, nil, "", OutcomeOK, 0},
		{201, nil, `{"commitment":"` + comm.String() + `","status":"partial"}`, OutcomePartial, 0},
		{503, nil, `{"error":"down","retry_after":4}`, OutcomeUnavailable, 4 * time.Second},
		{503, map[string]string{"Retry-After": "6"}, ``, OutcomeUnavailable, 6 * time.Second},
		{400, nil, `{"error":"big","code":"too_large"}`, OutcomeTooLarge, 0},
		{413, nil, ``, OutcomeTooLarge, 0},
		{400, nil, `{"error":"mismatch","code":"mismatch"}`, OutcomeBadRequest, 0},
		{500, nil, `{"error":"disk"}`, OutcomeServerError, 0},
		{502, nil, `bad gateway`, OutcomeServerError, 0},
		{418, nil, ``, OutcomeServerError, 0},
	} {
		cl, _ := scripted(t, c.status, c.header, c.body)
		got, err := cl.Put(ctx, data)
		if o := Classify(err); o != c.want {
			t.Errorf("%d %s: outcome %s (%v), want %s", c.status, c.body, o, err, c.want)
		}
		if d, ok := RetryAfter(err); d != c.retry || ok != (c.retry > 0) {
			t.Errorf("%d: RetryAfter %s %v, want %s", c.status, d, ok, c.retry)
		}
		if (c.want == OutcomeOK || c.want == OutcomePartial) && !bytes.Equal(got, comm) {
			t.Errorf("%d: commitment %s, want %s", c.status, got, comm)
		}
	}

	// A server that does not answer in time.
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	cl, _ := NewClient(ClientConfig{URL: hung.URL, PutTimeout: 100 * time.Millisecond})
	_, err := cl.Put(ctx, data)
	var te *TransportError
	if Classify(err) != OutcomeTimeout || !errors.Is(err, ErrTimeout) || !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung server: %s, %v; want a timeout", Classify(err), err)
	}

	// Nobody listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cl, _ = NewClient(ClientConfig{URL: "http://" + addr, PutTimeout: 5 * time.Second})
	if _, err := cl.Put(ctx, data); Classify(err) != OutcomeConnection || !errors.Is(err, ErrConnection) {
		t.Fatalf("refused connection: %s, %v", Classify(err), err)
	}

	// The caller giving up is not the server's fault.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	cl, _ = NewClient(ClientConfig{URL: hung.URL})
	if _, err := cl.Put(cctx, data); Classify(err) != OutcomeCanceled {
		t.Fatalf("canceled: %s, %v", Classify(err), err)
	}
	if _, err := cl.Put(ctx, nil); Classify(err) != OutcomeBadRequest {
		t.Fatalf("empty input: %s, %v", Classify(err), err)
	}
	if Classify(errors.New("unrelated")) != OutcomeOther || OutcomeTimeout.String() != "timeout" {
		t.Fatal("outcome of an unrelated error, or outcome names")
	}
}
