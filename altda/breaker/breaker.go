package breaker

import (
	"sync"
	"time"
)

// State is the breaker state.
type State int

const (
	// Closed: writes flow; consecutive failures are counted.
	Closed State = iota
	// Open: writes are refused until the cooldown has passed.
	Open
	// HalfOpen: the cooldown has passed; one trial (a write or a health probe) decides.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Config tunes the breaker.
type Config struct {
	// Threshold is how many consecutive failures open the breaker (default 5).
	Threshold int
	// Cooldown is how long the breaker stays open before a trial (default 10s).
	Cooldown time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnChange is called, outside the lock, after every state change.
	OnChange func(from, to State)
}

// Breaker is safe for concurrent use.
type Breaker struct {
	cfg      Config
	mu       sync.Mutex
	state    State
	failures int
	openedAt time.Time
	trial    bool // a half-open trial is in flight
}

// New returns a closed breaker.
func New(cfg Config) *Breaker {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 5
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Breaker{cfg: cfg}
}

// Allow asks whether a write may go to the primary. When it may not, retryAfter is how
// long until the breaker will consider a trial. A caller that is allowed must report the
// result with Success or Failure.
func (b *Breaker) Allow() (ok bool, retryAfter time.Duration) {
	b.mu.Lock()
	from := b.state
	switch b.state {
	case Closed:
		ok = true
	case Open:
		if wait := b.openedAt.Add(b.cfg.Cooldown).Sub(b.cfg.Now()); wait > 0 {
			retryAfter = wait
			break
		}
		b.state, b.trial, ok = HalfOpen, true, true
	case HalfOpen:
		if !b.trial {
			b.trial, ok = true, true
		} else {
			// The trial is still running; its answer is at most one write away.
			retryAfter = time.Second
		}
	}
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
	return ok, retryAfter
}

// Success reports a successful primary operation (or health probe): it closes the breaker.
func (b *Breaker) Success() {
	b.mu.Lock()
	from := b.state
	if b.state == Open && b.cfg.Now().Before(b.openedAt.Add(b.cfg.Cooldown)) {
		// A write that was admitted before the breaker opened says nothing new;
		// the advertised retry delay stands.
		b.mu.Unlock()
		return
	}
	b.state, b.failures, b.trial = Closed, 0, false
	b.mu.Unlock()
	b.notify(from, Closed)
}

// Failure reports a failed primary operation. Threshold consecutive failures open a
// closed breaker; a failed trial reopens a half-open one.
func (b *Breaker) Failure() {
	b.mu.Lock()
	from := b.state
	switch b.state {
	case Closed:
		b.failures++
		if b.failures >= b.cfg.Threshold {
			b.open()
		}
	case HalfOpen:
		b.open()
	}
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
}

// Trip opens the breaker at once, as a failed health probe does.
func (b *Breaker) Trip() {
	b.mu.Lock()
	from := b.state
	if b.state != Open {
		b.open()
	}
	b.mu.Unlock()
	b.notify(from, Open)
}

// ProbeDue reports whether a health probe may serve as the half-open trial: the breaker
// is open and its cooldown has passed. A probe's result is then reported with Success or
// Trip.
func (b *Breaker) ProbeDue() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == Open && !b.cfg.Now().Before(b.openedAt.Add(b.cfg.Cooldown))
}

func (b *Breaker) open() {
	b.state, b.openedAt, b.trial, b.failures = Open, b.cfg.Now(), false, 0
}

// State is the current state.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// RetryAfter is how long until an open breaker allows a trial (0 when not open).
func (b *Breaker) RetryAfter() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != Open {
		return 0
	}
	return max(0, b.openedAt.Add(b.cfg.Cooldown).Sub(b.cfg.Now()))
}

func (b *Breaker) notify(from, to State) {
	if from != to && b.cfg.OnChange != nil {
		b.cfg.OnChange(from, to)
	}
}
