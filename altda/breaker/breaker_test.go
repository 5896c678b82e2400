package breaker

import (
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTest(threshold int) (*Breaker, *clock, *[]string) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	var changes []string
	b := New(Config{Threshold: threshold, Cooldown: 10 * time.Second, Now: c.now,
		OnChange: func(from, to State) { changes = append(changes, from.String()+">"+to.String()) }})
	return b, c, &changes
}

func mustAllow(t *testing.T, b *Breaker) {
	t.Helper()
	if ok, _ := b.Allow(); !ok {
		t.Fatalf("refused in state %s", b.State())
	}
}

func mustRefuse(t *testing.T, b *Breaker, wantRetry time.Duration) {
	t.Helper()
	ok, retry := b.Allow()
	if ok {
		t.Fatalf("allowed in state %s", b.State())
	}
	if retry != wantRetry {
		t.Fatalf("retry after %s, want %s", retry, wantRetry)
	}
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	b, c, changes := newTest(3)
	for i := 0; i < 2; i++ {
		mustAllow(t, b)
		b.Failure()
	}
	mustAllow(t, b)
	b.Success() // a success resets the count
	for i := 0; i < 2; i++ {
		mustAllow(t, b)
		b.Failure()
	}
	if b.State() != Closed {
		t.Fatalf("opened after 2 consecutive failures (threshold 3)")
	}
	mustAllow(t, b)
	b.Failure()
	if b.State() != Open {
		t.Fatalf("state %s after 3 consecutive failures", b.State())
	}
	mustRefuse(t, b, 10*time.Second)
	c.advance(4 * time.Second)
	mustRefuse(t, b, 6*time.Second)
	if b.RetryAfter() != 6*time.Second {
		t.Fatalf("RetryAfter %s", b.RetryAfter())
	}
	if got := *changes; len(got) != 1 || got[0] != "closed>open" {
		t.Fatalf("changes %v", got)
	}
}

func TestHalfOpenTrial(t *testing.T) {
	b, c, changes := newTest(1)
	b.Failure()
	c.advance(10 * time.Second)
	mustAllow(t, b) // the trial
	if b.State() != HalfOpen {
		t.Fatalf("state %s after cooldown", b.State())
	}
	mustRefuse(t, b, time.Second) // only one trial at a time
	b.Failure()                   // the trial failed: open again, full cooldown
	mustRefuse(t, b, 10*time.Second)
	c.advance(10 * time.Second)
	mustAllow(t, b)
	b.Success()
	if b.State() != Closed {
		t.Fatalf("state %s after a successful trial", b.State())
	}
	mustAllow(t, b)
	want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
	if got := *changes; len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("changes %v, want %v", got, want)
			}
		}
	}
}

func TestProbeTripsAndCloses(t *testing.T) {
	b, c, _ := newTest(5)
	b.Trip() // a failed health probe opens at once, whatever the count
	if b.State() != Open {
		t.Fatal("probe failure did not open the breaker")
	}
	if b.ProbeDue() {
		t.Fatal("probe due before the cooldown")
	}
	b.Success() // a late success from a write admitted earlier changes nothing
	if b.State() != Open {
		t.Fatal("a success during the cooldown closed the breaker")
	}
	c.advance(10 * time.Second)
	if !b.ProbeDue() {
		t.Fatal("probe not due after the cooldown")
	}
	b.Success()
	if b.State() != Closed {
		t.Fatalf("state %s after a successful probe", b.State())
	}
}

func TestConcurrentUse(t *testing.T) {
	b := New(Config{Threshold: 3, Cooldown: time.Millisecond})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				if ok, _ := b.Allow(); ok {
					if (i+j)%3 == 0 {
						b.Failure()
					} else {
						b.Success()
					}
				}
				_ = b.State()
				_ = b.RetryAfter()
			}
		}(i)
	}
	wg.Wait()
}
