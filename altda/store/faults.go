package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
)

// FaultMode is what an operation does under fault injection.
type FaultMode string

const (
	FaultOK          FaultMode = "ok"
	FaultUnavailable FaultMode = "unavailable"
	FaultError       FaultMode = "error"
)

// UnmarshalText accepts "ok", "unavailable", "error" and "" (meaning ok).
func (m *FaultMode) UnmarshalText(b []byte) error {
	switch FaultMode(b) {
	case "", FaultOK:
		*m = FaultOK
	case FaultUnavailable, FaultError:
		*m = FaultMode(b)
	default:
		return fmt.Errorf("fault mode %q is not ok, unavailable or error", b)
	}
	return nil
}

// Fault is the injected behaviour of one store. The zero value injects nothing.
type Fault struct {
	Put       FaultMode `json:"put,omitempty"`
	Get       FaultMode `json:"get,omitempty"`
	LatencyMS int64     `json:"latency_ms,omitempty"`
}

// Normalize fills left-out fields with "ok".
func (f Fault) Normalize() Fault {
	if f.Put == "" {
		f.Put = FaultOK
	}
	if f.Get == "" {
		f.Get = FaultOK
	}
	return f
}

// Validate rejects latencies that are negative or absurd (over a minute).
func (f Fault) Validate() error {
	if f.LatencyMS < 0 || f.LatencyMS > 60_000 {
		return fmt.Errorf("latency_ms %d is outside 0..60000", f.LatencyMS)
	}
	return nil
}

// Faulty wraps a Store and injects the current Fault into every call. With no fault set
// it adds one atomic load per call.
type Faulty struct {
	Store
	fault atomic.Pointer[Fault]
}

// WithFaults wraps s.
func WithFaults(s Store) *Faulty {
	f := &Faulty{Store: s}
	f.fault.Store(&Fault{})
	return f
}

// SetFault replaces the injected fault.
func (f *Faulty) SetFault(fault Fault) {
	fault = fault.Normalize()
	f.fault.Store(&fault)
}

// Fault is the injected fault now in force.
func (f *Faulty) Fault() Fault { return f.fault.Load().Normalize() }

func (f *Faulty) inject(ctx context.Context, mode FaultMode, op string) error {
	fault := f.fault.Load()
	if fault.LatencyMS > 0 {
		t := time.NewTimer(time.Duration(fault.LatencyMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	switch mode {
	case FaultUnavailable:
		return fmt.Errorf("%s %s: injected fault: %w", f.Name(), op, ErrUnavailable)
	case FaultError:
		return fmt.Errorf("%s %s: injected fault: operation failed", f.Name(), op)
	}
	return nil
}

func (f *Faulty) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := f.inject(ctx, f.fault.Load().Get, "get"); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key)
}

func (f *Faulty) Has(ctx context.Context, key []byte) (bool, error) {
	if err := f.inject(ctx, f.fault.Load().Get, "has"); err != nil {
		return false, err
	}
	return f.Store.Has(ctx, key)
}

func (f *Faulty) Put(ctx context.Context, key, value []byte) error {
	if err := f.inject(ctx, f.fault.Load().Put, "put"); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, value)
}

// Ping fails while either direction is unavailable, as a real outage would.
func (f *Faulty) Ping(ctx context.Context) error {
	fault := f.fault.Load()
	if fault.Put == FaultUnavailable || fault.Get == FaultUnavailable {
		return fmt.Errorf("%s ping: injected fault: %w", f.Name(), ErrUnavailable)
	}
	return f.Store.Ping(ctx)
}

// MarshalJSON shows the fault with every field filled in.
func (f *Faulty) MarshalJSON() ([]byte, error) { return json.Marshal(f.Fault()) }
