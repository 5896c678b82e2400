package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a resettable one-shot timer.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it does not drain C.
	Stop() bool
	// Reset stops the timer, drains a pending tick, and arms it to fire after d.
	Reset(d time.Duration)
}

// System is the wall clock.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return &systemTimer{t: time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (s *systemTimer) C() <-chan time.Time { return s.t.C }
func (s *systemTimer) Stop() bool          { return s.t.Stop() }

// Reset relies on Go 1.23+ timer semantics: Stop/Reset discard a pending tick.
func (s *systemTimer) Reset(d time.Duration) { s.t.Reset(d) }

// Backoff is the delay before retry number attempts (1-based): 100ms doubling per
// attempt, capped at max. Zero or fewer attempts need no delay.
func Backoff(attempts int, max time.Duration) time.Duration {
	if attempts <= 0 {
		return 0
	}
	d := 100 * time.Millisecond
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// Fake is a clock that moves only when Advance is called. Timers fire, in deadline
// order, as Advance passes their deadlines.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake starts a fake clock at t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.armLocked(d)
	f.timers = append(f.timers, t)
	return t
}

// Advance moves time forward by d, firing every timer whose deadline is passed.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	due := make([]*fakeTimer, 0)
	for _, t := range f.timers {
		if t.armed && !t.at.After(f.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.armed = false
		select {
		case t.c <- f.now:
		default:
		}
	}
}

// Armed counts timers waiting to fire; tests use it to know a loop has gone to sleep.
func (f *Fake) Armed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if t.armed {
			n++
		}
	}
	return n
}

// NextDeadline is the earliest armed timer's deadline, and false when none is armed.
func (f *Fake) NextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best time.Time
	found := false
	for _, t := range f.timers {
		if t.armed && (!found || t.at.Before(best)) {
			best, found = t.at, true
		}
	}
	return best, found
}

type fakeTimer struct {
	f     *Fake
	c     chan time.Time
	at    time.Time
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	t.armLocked(d)
}

func (t *fakeTimer) armLocked(d time.Duration) {
	t.at = t.f.now.Add(d)
	t.armed = true
	if d <= 0 {
		t.armed = false
		select {
		case t.c <- t.f.now:
		default:
		}
	}
}

// Scaled is a clock that runs speed times faster than the wall clock from start: Now
// advances speed seconds per real second and timers fire after d/speed. Tests use it to
// produce minutes of chain time in seconds.
func Scaled(start time.Time, speed float64) Clock {
	return &scaled{origin: time.Now(), start: start, speed: speed}
}

type scaled struct {
	origin, start time.Time
	speed         float64
}

func (s *scaled) Now() time.Time {
	return s.start.Add(time.Duration(float64(time.Since(s.origin)) * s.speed))
}

func (s *scaled) NewTimer(d time.Duration) Timer {
	return &scaledTimer{systemTimer: systemTimer{t: time.NewTimer(s.real(d))}, s: s}
}

func (s *scaled) real(d time.Duration) time.Duration { return time.Duration(float64(d) / s.speed) }

type scaledTimer struct {
	systemTimer
	s *scaled
}

func (t *scaledTimer) Reset(d time.Duration) { t.t.Reset(t.s.real(d)) }
