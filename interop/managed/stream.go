package managed

import (
	"log/slog"
	"sync"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/interop"
)

// stream delivers events either to the one active subscription or, without one, to a
// bounded queue that interop_pullEvent drains. The two modes exclude each other, as the OP
// Stack's node does it: pulling ends an active subscription, and subscribing drops the queue.
//
// Producers never wait on the network: send only appends under the lock, and each
// subscription has one sender goroutine that writes its events in order outside the lock.
// A subscriber that stops reading therefore costs the node nothing but a bounded backlog.
type stream struct {
	log     *slog.Logger
	maxSize int

	mu      sync.Mutex
	queue   []*interop.ManagedEvent
	sub     *subscriber
	dropped uint64
}

// subscriber is one live subscription and the events not yet written to it.
type subscriber struct {
	id       rpc.ID
	notifier *rpc.Notifier
	gone     <-chan error

	// pending is guarded by the stream's lock.
	pending []*interop.ManagedEvent
	wake    chan struct{} // a buffered "pending grew" signal
	// done is closed when the subscription is replaced or ended by a pull; its sender
	// then writes the close signal and exits.
	done chan struct{}
}

// subscriberBacklog bounds the events waiting to be written to a subscriber.
const subscriberBacklog = 4096

func newStream(log *slog.Logger, maxSize int) *stream {
	return &stream{log: log, maxSize: maxSize}
}

// send hands ev to the subscriber's sender, or queues it for pulling.
func (s *stream) send(ev *interop.ManagedEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		s.sub.pending = append(s.sub.pending, ev)
		if len(s.sub.pending) > subscriberBacklog {
			// Too slow to keep up: end the subscription rather than drop events from
			// its middle. The supervisor re-subscribes and starts from a fresh
			// snapshot of the heads, or pulls what is queued.
			s.log.Warn("Event subscriber is not reading, ending its subscription", "backlog", len(s.sub.pending))
			s.endSubLocked()
			return
		}
		select {
		case s.sub.wake <- struct{}{}:
		default:
		}
		return
	}
	s.queue = s.trimLocked(append(s.queue, ev))
}

// trimLocked keeps the newest maxSize events of q, counting what it drops.
func (s *stream) trimLocked(q []*interop.ManagedEvent) []*interop.ManagedEvent {
	over := len(q) - s.maxSize
	if over <= 0 {
		return q
	}
	s.dropped += uint64(over)
	s.log.Warn("Event backlog full, dropping the oldest events", "dropped", over)
	return append(q[:0:0], q[over:]...)
}

// subscribe makes the calling connection the subscriber. The first event it gets is
// what first() returns, taken under the stream's lock: every event sent before is
// reflected in it, every event sent after follows it.
func (s *stream) subscribe(notifier *rpc.Notifier, first func() (*interop.ManagedEvent, error)) (*rpc.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, err := first()
	if err != nil {
		return nil, err
	}
	s.endSubLocked()
	rsub := notifier.CreateSubscription()
	sub := &subscriber{
		id: rsub.ID, notifier: notifier, gone: rsub.Err(),
		pending: []*interop.ManagedEvent{ev},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	sub.wake <- struct{}{}
	s.sub = sub
	s.queue = nil
	go s.deliver(sub)
	return rsub, nil
}

// deliver writes sub's events in order until the subscription is replaced, pulled away
// or its connection ends. Events it could not write go back to the pull queue, so a
// supervisor that falls back to pulling still sees them.
func (s *stream) deliver(sub *subscriber) {
	for {
		select {
		case <-sub.done:
			_ = sub.notifier.Notify(sub.id, interop.EventEntry{Close: true})
			return
		case <-sub.gone:
			s.unsubscribe(sub, nil)
			return
		case <-sub.wake:
		}
		s.mu.Lock()
		batch := sub.pending
		sub.pending = nil
		s.mu.Unlock()
		for i, ev := range batch {
			select {
			case <-sub.done:
				s.requeueAfterEnd(batch[i:])
				_ = sub.notifier.Notify(sub.id, interop.EventEntry{Close: true})
				return
			default:
			}
			if err := sub.notifier.Notify(sub.id, interop.EventEntry{Data: ev}); err != nil {
				s.log.Debug("Event subscriber gone, queueing events", "err", err)
				s.unsubscribe(sub, batch[i:])
				return
			}
		}
	}
}

// unsubscribe forgets sub if it is still the subscriber, putting unsent (the events it
// failed to write) and whatever was still pending back at the front of the pull queue.
func (s *stream) unsubscribe(sub *subscriber, unsent []*interop.ManagedEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != sub {
		return
	}
	s.sub = nil
	back := append(append(unsent[:len(unsent):len(unsent)], sub.pending...), s.queue...)
	sub.pending = nil
	s.queue = s.trimLocked(back)
}

// requeueAfterEnd puts events a replaced sender had not written yet in front of the pull
// queue, when the stream is now pulled; a new subscription starts from a fresh snapshot of
// the heads instead, so they are dropped then.
func (s *stream) requeueAfterEnd(unsent []*interop.ManagedEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub == nil {
		s.queue = s.trimLocked(append(unsent[:len(unsent):len(unsent)], s.queue...))
	}
}

// endSubLocked ends the active subscription: its sender writes the close signal and
// exits. Events it had not written yet move to the pull queue.
func (s *stream) endSubLocked() {
	if s.sub == nil {
		return
	}
	s.queue = s.trimLocked(append(s.sub.pending, s.queue...))
	s.sub.pending = nil
	close(s.sub.done)
	s.sub = nil
}

// pull ends any subscription and returns the oldest queued event, or nil when there is none.
func (s *stream) pull() *interop.ManagedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endSubLocked()
	if len(s.queue) == 0 {
		return nil
	}
	ev := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return ev
}

func (s *stream) subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sub != nil
}
