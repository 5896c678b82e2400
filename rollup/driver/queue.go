package driver

import (
	"sort"

	"github.com/ethereum/go-ethereum/beacon/engine"
)

// payloadQueue keeps unsafe payloads that arrived ahead of the unsafe head, ordered by
// block number, until their parents arrive. It is bounded: when full, the payload
// farthest from the head is the one left out, since the nearest ones are the next to be
// insertable.
type payloadQueue struct {
	max   int
	items []*engine.ExecutionPayloadEnvelope
}

func (q *payloadQueue) len() int { return len(q.items) }

// push adds env unless a payload with the same hash is kept; it reports whether env is
// kept.
func (q *payloadQueue) push(env *engine.ExecutionPayloadEnvelope) bool {
	p := env.ExecutionPayload
	for _, it := range q.items {
		if it.ExecutionPayload.BlockHash == p.BlockHash {
			return false
		}
	}
	i := sort.Search(len(q.items), func(i int) bool { return q.items[i].ExecutionPayload.Number > p.Number })
	q.items = append(q.items, nil)
	copy(q.items[i+1:], q.items[i:])
	q.items[i] = env
	if q.max > 0 && len(q.items) > q.max {
		last := q.items[len(q.items)-1]
		q.items = q.items[:len(q.items)-1]
		return last != env
	}
	return true
}

func (q *payloadQueue) peek() *engine.ExecutionPayloadEnvelope {
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

func (q *payloadQueue) pop() {
	q.items[0] = nil
	q.items = q.items[1:]
}

// dropUpTo forgets payloads at or below block number n: the chain already has a block
// there.
func (q *payloadQueue) dropUpTo(n uint64) {
	for len(q.items) > 0 && q.items[0].ExecutionPayload.Number <= n {
		q.pop()
	}
}
