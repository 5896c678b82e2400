package clock

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for attempts, w := range want {
		if got := Backoff(attempts, time.Second); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", attempts, got, w)
		}
	}
	if got := Backoff(1000, 10*time.Second); got != 10*time.Second {
		t.Errorf("many attempts: %s", got)
	}
}

func TestFakeTimers(t *testing.T) {
	f := NewFake(time.Unix(100, 0))
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	f.Advance(999 * time.Millisecond)
	select {
	case <-b.C():
		t.Fatal("fired early")
	default:
	}
	f.Advance(time.Millisecond)
	if got := <-b.C(); !got.Equal(time.Unix(101, 0)) {
		t.Fatalf("fired at %v", got)
	}
	if f.Armed() != 1 {
		t.Fatalf("armed %d", f.Armed())
	}
	a.Stop()
	f.Advance(time.Hour)
	select {
	case <-a.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	a.Reset(0) // a zero reset fires at once
	<-a.C()
	b.Reset(time.Second)
	if at, ok := f.NextDeadline(); !ok || !at.Equal(f.Now().Add(time.Second)) {
		t.Fatalf("next deadline %v %v", at, ok)
	}
}

func TestScaledClock(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	c := Scaled(start, 1000)
	tm := c.NewTimer(10 * time.Second) // 10ms of real time
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("scaled timer did not fire")
	}
	if got := c.Now().Sub(start); got < 10*time.Second {
		t.Fatalf("clock advanced %s, want at least 10s", got)
	}
}
