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
type stream struct {
	log     *slog.Logger
	maxSize int

	mu       sync.Mutex
	queue    []*interop.ManagedEvent
	sub      *rpc.Subscription
	notifier *rpc.Notifier
	dropped  uint64
}

func newStream(log *slog.Logger, maxSize int) *stream {
	return &stream{log: log, maxSize: maxSize}
}

// send delivers ev to the subscriber, or queues it. Delivery happens under the lock so that
// events reach the subscriber in the order they were sent; a failed notification puts the
// event in the queue instead of losing it.
func (s *stream) send(ev *interop.ManagedEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		if err := s.notifier.Notify(s.sub.ID, interop.EventEntry{Data: ev}); err == nil {
			return
		} else {
			s.log.Debug("Event subscriber gone, queueing events", "err", err)
			s.sub, s.notifier = nil, nil
		}
	}
	s.enqueue(ev)
}

func (s *stream) enqueue(ev *interop.ManagedEvent) {
	s.queue = append(s.queue, ev)
	if over := len(s.queue) - s.maxSize; over > 0 {
		s.dropped += uint64(over)
		s.log.Warn("Event queue full, dropping the oldest events", "dropped", over)
		s.queue = append(s.queue[:0:0], s.queue[over:]...)
	}
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
	s.closeSubLocked()
	sub := notifier.CreateSubscription()
	s.sub, s.notifier = sub, notifier
	s.queue = nil
	if err := notifier.Notify(sub.ID, interop.EventEntry{Data: ev}); err != nil {
		return nil, err
	}
	// Forget the subscription once its connection ends; the goroutine ends with it, and
	// the RPC server closes every connection when it stops.
	go func() {
		<-sub.Err()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.sub == sub {
			s.sub, s.notifier = nil, nil
		}
	}()
	return sub, nil
}

func (s *stream) closeSubLocked() {
	if s.sub == nil {
		return
	}
	_ = s.notifier.Notify(s.sub.ID, interop.EventEntry{Close: true})
	s.sub, s.notifier = nil, nil
}

// pull ends any subscription and returns the oldest queued event, or nil when there is none.
func (s *stream) pull() *interop.ManagedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeSubLocked()
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
