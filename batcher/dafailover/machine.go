package dafailover

import (
	"errors"
	"fmt"
	"time"

	"github.com/opkit/opkit/altda"
)

// Outcome classifies one PUT answer.
type Outcome int

const (
	// OK: 200, the data is stored everywhere the server requires.
	OK Outcome = iota
	// Partial: 201, stored in the primary only; the commitment is valid.
	Partial
	// Unavailable: 503, the server asks writers to go elsewhere for a while.
	Unavailable
	// BadRequest: 400, the server refused the body (too large, bad commitment): the
	// batcher's settings do not match the server's.
	BadRequest
	// Transient: a timeout, a connection error or a 5xx other than 503.
	Transient
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Partial:
		return "partial"
	case Unavailable:
		return "unavailable"
	case BadRequest:
		return "bad_request"
	case Transient:
		return "transient"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Classify turns the error of altda.Client.Put into an Outcome and the delay a 503
// asked for (zero when it named none).
func Classify(err error) (Outcome, time.Duration) {
	if err == nil {
		return OK, 0
	}
	var rerr *altda.ResponseError
	retry := time.Duration(0)
	if errors.As(err, &rerr) {
		retry = rerr.RetryAfter
	}
	switch {
	case errors.Is(err, altda.ErrPartial):
		return Partial, 0
	case errors.Is(err, altda.ErrUnavailable):
		return Unavailable, retry
	case errors.Is(err, altda.ErrBadRequest), errors.Is(err, altda.ErrEmptyInput):
		return BadRequest, 0
	}
	return Transient, 0
}

// Config bounds the machine. Zero fields take the defaults below.
type Config struct {
	// DefaultRetryAfter is how long AltDA is avoided after a 503 that named no delay, and
	// after a channel failed over because of timeouts or server errors. Default 60s.
	DefaultRetryAfter time.Duration
	// MaxRetryAfter caps a server's retry_after, so a wrong answer cannot keep the
	// batcher on Ethereum for days. Default 1h.
	MaxRetryAfter time.Duration
	// PartialMaxRetries is how many times a body answered with 201 is sent again before
	// the commitment is posted as it is. Default 10.
	PartialMaxRetries int
	// TransientMaxRetries is how many times a PUT that timed out or met a server error is
	// retried before the channel fails over. Default 5.
	TransientMaxRetries int
	// BackoffBase and BackoffMax shape the delay before a resend: BackoffBase doubling
	// per attempt, capped at BackoffMax. Defaults 200ms and 10s.
	BackoffBase, BackoffMax time.Duration
}

func (c *Config) applyDefaults() {
	if c.DefaultRetryAfter <= 0 {
		c.DefaultRetryAfter = time.Minute
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = time.Hour
	}
	if c.PartialMaxRetries < 0 {
		c.PartialMaxRetries = 0
	} else if c.PartialMaxRetries == 0 {
		c.PartialMaxRetries = 10
	}
	if c.TransientMaxRetries <= 0 {
		c.TransientMaxRetries = 5
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 200 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Second
	}
}

// NoPartialRetries as Config.PartialMaxRetries posts a 201's commitment at once.
const NoPartialRetries = -1

// Target is where a channel's data goes.
type Target int

const (
	// AltDA: frames are PUT to the DA server and their commitments posted as calldata.
	AltDA Target = iota
	// Ethereum: frames go to L1 as blobs or calldata (the auto rule picks).
	Ethereum
)

func (t Target) String() string {
	if t == AltDA {
		return "altda"
	}
	return "ethereum"
}

// Machine holds the state shared by all channels: until when AltDA is avoided. It is not
// safe for concurrent use; the batcher drives it from one goroutine.
type Machine struct {
	cfg      Config
	offUntil time.Time
}

// New returns a machine that starts on AltDA.
func New(cfg Config) *Machine {
	cfg.applyDefaults()
	return &Machine{cfg: cfg}
}

// Config is the configuration in force, defaults applied.
func (m *Machine) Config() Config { return m.cfg }

// NewChannel is the target of a channel opened at now.
func (m *Machine) NewChannel(now time.Time) Target {
	if now.Before(m.offUntil) {
		return Ethereum
	}
	return AltDA
}

// OffUntil is when AltDA may be tried again; the zero time when it is not avoided.
func (m *Machine) OffUntil() time.Time { return m.offUntil }

// Put is the progress of one frame's PUT.
type Put struct {
	partials   int
	transients int
}

// Partials is how many 201 answers the frame got.
func (p *Put) Partials() int { return p.partials }

// Transients is how many timeouts or server errors the frame met.
func (p *Put) Transients() int { return p.transients }

// ActionKind is what the caller does next.
type ActionKind int

const (
	// Post the commitment on L1.
	Post ActionKind = iota
	// Resend the same body after Action.Delay.
	Resend
	// Failover: this frame and the rest of its channel go to Ethereum DA.
	Failover
)

func (k ActionKind) String() string {
	switch k {
	case Post:
		return "post"
	case Resend:
		return "resend"
	case Failover:
		return "failover"
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// Action is the machine's answer to an outcome.
type Action struct {
	Kind  ActionKind
	Delay time.Duration // for Resend
	// PartialCommitted: Post after the partial-retry bound: the data may be missing
	// from a secondary store.
	PartialCommitted bool
	// Reason says why, for logs and metrics.
	Reason string
}

// Step records the outcome of one PUT of p at now and says what to do next. retryAfter
// is the delay a 503 named (zero: none).
func (m *Machine) Step(p *Put, o Outcome, retryAfter time.Duration, now time.Time) Action {
	switch o {
	case OK:
		return Action{Kind: Post, Reason: "stored"}
	case Partial:
		p.partials++
		if p.partials > m.cfg.PartialMaxRetries {
			return Action{Kind: Post, PartialCommitted: true, Reason: "partial retries exhausted"}
		}
		return Action{Kind: Resend, Delay: m.backoff(p.partials), Reason: "partial"}
	case Unavailable:
		d := retryAfter
		if d <= 0 {
			d = m.cfg.DefaultRetryAfter
		}
		m.avoid(now, min(d, m.cfg.MaxRetryAfter))
		return Action{Kind: Failover, Reason: "unavailable"}
	case BadRequest:
		// A refused body is a setting that does not match the server: this channel goes
		// to Ethereum, and the next one tries again, so fixing the server heals the
		// batcher without a restart.
		return Action{Kind: Failover, Reason: "bad request"}
	default:
		p.transients++
		if p.transients > m.cfg.TransientMaxRetries {
			m.avoid(now, m.cfg.DefaultRetryAfter)
			return Action{Kind: Failover, Reason: "server errors"}
		}
		return Action{Kind: Resend, Delay: m.backoff(p.transients), Reason: "server error"}
	}
}

// avoid keeps AltDA off until at least now+d; a later deadline already set stands.
func (m *Machine) avoid(now time.Time, d time.Duration) {
	if until := now.Add(d); until.After(m.offUntil) {
		m.offUntil = until
	}
}

func (m *Machine) backoff(attempt int) time.Duration {
	d := m.cfg.BackoffBase
	for i := 1; i < attempt && d < m.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, m.cfg.BackoffMax)
}
