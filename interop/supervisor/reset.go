package supervisor

import (
	"context"
	"fmt"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

var isNotFound = interop.IsNotFound

// maxCatchUp bounds how many blocks a consistency check indexes from a node in one go;
// the node's next events continue from there.
const maxCatchUp = 10_000

// agrees reports whether the node's canonical block at id's height is id. A node that
// does not have the block does not agree.
func (n *nodeConn) agrees(ctx context.Context, sess session, id eth.BlockID) (bool, error) {
	ref, err := sess.l2BlockRefByNumber(ctx, id.Number)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ref.Hash == id.Hash, nil
}

// checkConsistency runs on every (re)connect and whenever the node contradicts the
// supervisor: it resets the node if its local-safe chain left the supervisor's, follows the
// node's unsafe chain where it differs above local-safe, and indexes what the node has
// beyond the supervisor's head.
func (n *nodeConn) checkConsistency(ctx context.Context, sess session) error {
	c := n.chainID()
	st, ok := n.s.heads(c)
	if !ok {
		return fmt.Errorf("chain %s is not tracked", c)
	}
	ok, err := n.agrees(ctx, sess, st.LocalSafe.Derived.ID())
	if err != nil {
		return err
	}
	if !ok {
		n.log.Warn("Node does not hold the supervisor's local-safe block, resetting it", "localSafe", st.LocalSafe.Derived)
		return n.reset(ctx, sess)
	}
	if st.LocalUnsafe.Number > st.LocalSafe.Derived.Number {
		ok, err := n.agrees(ctx, sess, st.LocalUnsafe.ID())
		if err != nil {
			return err
		}
		if !ok {
			lo, hi := st.LocalSafe.Derived.Number, st.LocalUnsafe.Number
			last, err := n.bisect(ctx, sess, lo, hi)
			if err != nil {
				return err
			}
			if err := n.s.locked(func() error { return n.s.rewindUnsafeLocked(c, last) }); err != nil {
				return err
			}
		}
	}
	st, _ = n.s.heads(c)
	for i := 0; i < maxCatchUp; i++ {
		ref, err := sess.l2BlockRefByNumber(ctx, st.LocalUnsafe.Number+1+uint64(i))
		if isNotFound(err) {
			break
		}
		if err != nil {
			return err
		}
		if err := n.s.indexUnsafe(ctx, c, sess, ref.BlockRef()); err != nil {
			return err
		}
	}
	n.s.update()
	return nil
}

// bisect finds the highest height in [lo, hi) where the node holds the supervisor's
// block, given that it does at lo and does not at hi. Agreement is prefix-closed, since
// each block commits to its parent.
func (n *nodeConn) bisect(ctx context.Context, sess session, lo, hi uint64) (uint64, error) {
	c := n.chainID()
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ours, err := n.s.db.block(c, mid)
		if err != nil {
			return 0, err
		}
		if ours == nil {
			return 0, fmt.Errorf("block %d of chain %s is not indexed", mid, c)
		}
		ok, err := n.agrees(ctx, sess, ours.Ref.ID())
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// reset finds the last local-safe block the node and the supervisor agree on, by
// bisection over the recorded local-safe range, and resets the node to it. No head sent is
// ever zero: heads that are not known yet are the anchor block.
func (n *nodeConn) reset(ctx context.Context, sess session) error {
	c := n.chainID()
	st, ok := n.s.durableHeads(c)
	if !ok {
		return fmt.Errorf("chain %s is not tracked", c)
	}
	n.s.m.resets.WithLabelValues(c.String()).Inc()
	lo, hi := st.Anchor.Derived.Number, st.LocalSafe.Derived.Number
	target := st.LocalSafe.Derived
	ok, err := n.agrees(ctx, sess, target.ID())
	if err != nil {
		return err
	}
	if !ok {
		ok, err := n.agrees(ctx, sess, st.Anchor.Derived.ID())
		if err != nil {
			return err
		}
		if !ok {
			n.log.Warn("Node does not hold the interop anchor block, resetting it to before interop")
			return n.call(ctx, sess.cl, nil, "interop_resetPreInterop")
		}
		last, err := n.bisect(ctx, sess, lo, hi)
		if err != nil {
			return err
		}
		b, err := n.s.db.block(c, last)
		if err != nil {
			return err
		}
		if b == nil {
			return fmt.Errorf("block %d of chain %s is not indexed", last, c)
		}
		target = b.Ref
	}
	lUnsafe := target.ID()
	if target == st.LocalSafe.Derived && st.LocalUnsafe.Number > target.Number {
		ok, err := n.agrees(ctx, sess, st.LocalUnsafe.ID())
		if err != nil {
			return err
		}
		if ok {
			lUnsafe = st.LocalUnsafe.ID()
		}
	}
	capAt := func(id eth.BlockID) eth.BlockID {
		if id.Number > target.Number {
			return target.ID()
		}
		return id
	}
	xUnsafe, xSafe, fin := capAt(st.CrossUnsafe.ID()), capAt(st.CrossSafe.Derived.ID()), capAt(st.Finalized.ID())
	n.log.Warn("Resetting node", "localUnsafe", lUnsafe, "crossUnsafe", xUnsafe, "localSafe", target.ID(), "crossSafe", xSafe, "finalized", fin)
	if err := n.call(ctx, sess.cl, nil, "interop_reset", lUnsafe, xUnsafe, target.ID(), xSafe, fin); err != nil {
		return fmt.Errorf("reset node: %w", err)
	}
	if lUnsafe == target.ID() && target == st.LocalSafe.Derived && st.LocalUnsafe.Number > target.Number {
		if err := n.s.locked(func() error { return n.s.rewindUnsafeLocked(c, target.Number) }); err != nil {
			return err
		}
	}
	// The node forgot what it was told above the reset heads; tell it again.
	n.mu.Lock()
	n.acked = promotion{}
	n.mu.Unlock()
	n.kickPromote()
	return nil
}
