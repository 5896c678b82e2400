package dafailover

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/opkit/opkit/altda"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestOKPosts(t *testing.T) {
	m := New(Config{})
	var p Put
	if a := m.Step(&p, OK, 0, t0); a.Kind != Post || a.PartialCommitted {
		t.Fatalf("200: %+v", a)
	}
	if m.NewChannel(t0) != AltDA {
		t.Fatal("a 200 moved channels off AltDA")
	}
}

func TestUnavailableFailsOverForRetryAfter(t *testing.T) {
	m := New(Config{DefaultRetryAfter: time.Minute})
	var p Put
	if a := m.Step(&p, Unavailable, 30*time.Second, t0); a.Kind != Failover {
		t.Fatalf("503: %+v", a)
	}
	if got := m.NewChannel(t0.Add(29 * time.Second)); got != Ethereum {
		t.Fatalf("channel opened inside retry_after goes to %v", got)
	}
	if got := m.NewChannel(t0.Add(30 * time.Second)); got != AltDA {
		t.Fatalf("channel opened after retry_after goes to %v", got)
	}
	if !m.OffUntil().Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("off until %v", m.OffUntil())
	}
}

func TestUnavailableWithoutDelayUsesDefault(t *testing.T) {
	m := New(Config{DefaultRetryAfter: 45 * time.Second})
	m.Step(&Put{}, Unavailable, 0, t0)
	if m.NewChannel(t0.Add(44*time.Second)) != Ethereum || m.NewChannel(t0.Add(45*time.Second)) != AltDA {
		t.Fatalf("default retry_after not applied: off until %v", m.OffUntil())
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	m := New(Config{MaxRetryAfter: time.Hour})
	m.Step(&Put{}, Unavailable, 1000*time.Hour, t0)
	if !m.OffUntil().Equal(t0.Add(time.Hour)) {
		t.Fatalf("off until %v", m.OffUntil())
	}
}

func TestEarlierDeadlineDoesNotShortenAvoidance(t *testing.T) {
	m := New(Config{})
	m.Step(&Put{}, Unavailable, 10*time.Minute, t0)
	m.Step(&Put{}, Unavailable, time.Second, t0.Add(time.Second))
	if !m.OffUntil().Equal(t0.Add(10 * time.Minute)) {
		t.Fatalf("off until %v", m.OffUntil())
	}
}

func TestPartialResendsWithBackoffThenCommits(t *testing.T) {
	m := New(Config{PartialMaxRetries: 3, BackoffBase: 100 * time.Millisecond, BackoffMax: 300 * time.Millisecond})
	var p Put
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	for i, d := range want {
		a := m.Step(&p, Partial, 0, t0)
		if a.Kind != Resend || a.Delay != d {
			t.Fatalf("201 #%d: %+v, want resend after %v", i+1, a, d)
		}
	}
	a := m.Step(&p, Partial, 0, t0)
	if a.Kind != Post || !a.PartialCommitted {
		t.Fatalf("201 past the bound: %+v", a)
	}
	if p.Partials() != 4 {
		t.Fatalf("partials %d", p.Partials())
	}
	if m.NewChannel(t0) != AltDA {
		t.Fatal("a 201 moved channels off AltDA")
	}
}

func TestPartialThenOK(t *testing.T) {
	m := New(Config{PartialMaxRetries: 3})
	var p Put
	m.Step(&p, Partial, 0, t0)
	if a := m.Step(&p, OK, 0, t0); a.Kind != Post || a.PartialCommitted {
		t.Fatalf("200 after 201: %+v", a)
	}
}

func TestNoPartialRetries(t *testing.T) {
	m := New(Config{PartialMaxRetries: NoPartialRetries})
	if a := m.Step(&Put{}, Partial, 0, t0); a.Kind != Post || !a.PartialCommitted {
		t.Fatalf("201 with no retries allowed: %+v", a)
	}
}

func TestBadRequestFailsOverOnlyThisChannel(t *testing.T) {
	m := New(Config{})
	if a := m.Step(&Put{}, BadRequest, 0, t0); a.Kind != Failover {
		t.Fatalf("400: %+v", a)
	}
	if m.NewChannel(t0) != AltDA {
		t.Fatal("a 400 kept later channels off AltDA")
	}
}

func TestTransientRetriesThenFailsOver(t *testing.T) {
	m := New(Config{TransientMaxRetries: 2, DefaultRetryAfter: time.Minute, BackoffBase: time.Second, BackoffMax: time.Minute})
	var p Put
	for i, d := range []time.Duration{time.Second, 2 * time.Second} {
		if a := m.Step(&p, Transient, 0, t0); a.Kind != Resend || a.Delay != d {
			t.Fatalf("error #%d: %+v", i+1, a)
		}
	}
	if a := m.Step(&p, Transient, 0, t0); a.Kind != Failover {
		t.Fatalf("error past the bound: %+v", a)
	}
	if m.NewChannel(t0.Add(59*time.Second)) != Ethereum || m.NewChannel(t0.Add(time.Minute)) != AltDA {
		t.Fatalf("off until %v", m.OffUntil())
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err   error
		want  Outcome
		delay time.Duration
	}{
		{nil, OK, 0},
		{&altda.ResponseError{Kind: altda.ErrPartial, Status: 201}, Partial, 0},
		{fmt.Errorf("put: %w", &altda.ResponseError{Kind: altda.ErrUnavailable, Status: 503, RetryAfter: 7 * time.Second}), Unavailable, 7 * time.Second},
		{&altda.ResponseError{Kind: altda.ErrBadRequest, Status: 400}, BadRequest, 0},
		{&altda.ResponseError{Kind: altda.ErrTooLarge, Status: 400}, BadRequest, 0},
		{altda.ErrEmptyInput, BadRequest, 0},
		{&altda.ResponseError{Kind: altda.ErrServer, Status: 500}, Transient, 0},
		{errors.New("dial tcp: connection refused"), Transient, 0},
	}
	for _, c := range cases {
		got, d := Classify(c.err)
		if got != c.want || d != c.delay {
			t.Errorf("Classify(%v) = %v, %v; want %v, %v", c.err, got, d, c.want, c.delay)
		}
	}
}
