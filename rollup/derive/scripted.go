package derive

import (
	"context"
	"io"
	"sync"

	"github.com/opkit/opkit/eth"
)

// Scripted is a pipeline whose Step results are given in advance, for testing the driver.
// Once the script runs out every step is idle (io.EOF). Every call is recorded.
type Scripted struct {
	mu        sync.Mutex
	script    []error
	steps     int
	resets    int
	finalized []eth.L1BlockRef
	origin    eth.L1BlockRef
	stepped   chan struct{}
}

// NewScripted returns a pipeline that answers the given results in order.
func NewScripted(results ...error) *Scripted {
	return &Scripted{script: results, stepped: make(chan struct{}, 1024)}
}

// Push appends results to the script.
func (p *Scripted) Push(results ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = append(p.script, results...)
}

func (p *Scripted) Step(context.Context) error {
	p.mu.Lock()
	p.steps++
	var err error = io.EOF
	if len(p.script) > 0 {
		err = p.script[0]
		p.script = p.script[1:]
	}
	p.mu.Unlock()
	select {
	case p.stepped <- struct{}{}:
	default:
	}
	return err
}

func (p *Scripted) Reset(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resets++
	return nil
}

func (p *Scripted) Origin() eth.L1BlockRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.origin
}

func (p *Scripted) OnL1Finalized(_ context.Context, l1 eth.L1BlockRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finalized = append(p.finalized, l1)
}

// Steps, Resets and Finalized report what the driver did.
func (p *Scripted) Steps() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.steps
}

func (p *Scripted) Resets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets
}

func (p *Scripted) Finalized() []eth.L1BlockRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]eth.L1BlockRef(nil), p.finalized...)
}

// Remaining is how many scripted results are left.
func (p *Scripted) Remaining() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.script)
}

// Stepped receives a value after every step (dropped when nobody reads).
func (p *Scripted) Stepped() <-chan struct{} { return p.stepped }
