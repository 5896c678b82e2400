package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// nodeConn manages one node: it (re)dials, checks and follows the node's events, and
// sends it L1 blocks and promotions.
type nodeConn struct {
	s        *Supervisor
	endpoint string
	secret   interop.Secret
	log      *slog.Logger

	mu      sync.Mutex
	client  *rpc.Client // nil while disconnected
	chain   interop.ChainID
	chainOK bool
	// exhausted is the L1 block the node last said it used up, while the next one has
	// not been given to it.
	exhausted *eth.BlockRef
	acked     promotion
	// invalidated is the last invalidation the node acknowledged.
	invalidated eth.BlockSeal

	promote chan struct{}
	l1      chan struct{}
	// resetReq asks the session to reset the node to the supervisor's local-safe head
	// (after an L1 reorg lowered it).
	resetReq chan struct{}
}

func newNodeConn(s *Supervisor, i int, cfg NodeConfig) *nodeConn {
	return &nodeConn{
		s: s, endpoint: cfg.Endpoint, secret: cfg.Secret,
		log:      s.log.With("node", i, "endpoint", cfg.Endpoint),
		promote:  make(chan struct{}, 1),
		l1:       make(chan struct{}, 1),
		resetReq: make(chan struct{}, 1),
	}
}

func (n *nodeConn) chainID() interop.ChainID {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.chainOK {
		return ^interop.ChainID(0)
	}
	return n.chain
}

func (n *nodeConn) connected() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client != nil
}

func (n *nodeConn) currentClient() *rpc.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

func (n *nodeConn) awaitingL1() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exhausted != nil
}

func (n *nodeConn) kickPromote() {
	select {
	case n.promote <- struct{}{}:
	default:
	}
}

// requestReset asks the node's session for a reset to the supervisor's heads.
func (n *nodeConn) requestReset() {
	select {
	case n.resetReq <- struct{}{}:
	default:
	}
}

// resetForL1 resets the node after an L1 reorg: what it exhausted is on the dropped branch,
// and derivation must start again from the (lowered) local-safe head.
func (n *nodeConn) resetForL1(ctx context.Context, sess session) {
	n.mu.Lock()
	n.exhausted = nil
	n.mu.Unlock()
	n.forgetExhausted()
	if err := n.reset(ctx, sess); err != nil && ctx.Err() == nil {
		n.log.Warn("Cannot reset the node after an L1 reorg", "err", err)
	}
}

func (n *nodeConn) kickL1() {
	select {
	case n.l1 <- struct{}{}:
	default:
	}
}

// call runs one RPC with the configured timeout.
func (n *nodeConn) call(ctx context.Context, cl *rpc.Client, result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, n.s.cfg.CallTimeout)
	defer cancel()
	if err := cl.CallContext(ctx, result, method, args...); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// session is one connection's view of the node, used as the blockSource while indexing.
type session struct {
	n  *nodeConn
	cl *rpc.Client
}

func (c session) l2BlockRefByNumber(ctx context.Context, num uint64) (eth.L2BlockRef, error) {
	var ref eth.L2BlockRef
	err := c.n.call(ctx, c.cl, &ref, "interop_l2BlockRefByNumber", num)
	if interop.IsNotFound(err) && !errors.Is(err, interop.ErrNotFound) {
		err = fmt.Errorf("%w: %w", interop.ErrNotFound, err)
	}
	return ref, err
}

func (c session) fetchReceipts(ctx context.Context, ref eth.BlockRef) (types.Receipts, error) {
	var receipts types.Receipts
	if err := c.n.call(ctx, c.cl, &receipts, "interop_fetchReceipts", ref.Hash); err != nil {
		return nil, err
	}
	for _, r := range receipts {
		if r.BlockHash != (common.Hash{}) && r.BlockHash != ref.Hash {
			return nil, fmt.Errorf("receipts of block %s: node answered for block %s", ref, r.BlockHash)
		}
	}
	return receipts, nil
}

// run keeps a connection to the node until the supervisor closes.
func (n *nodeConn) run() {
	defer n.s.wg.Done()
	backoff := n.s.cfg.RetryInterval
	for n.s.ctx.Err() == nil {
		start := time.Now()
		err := n.session(n.s.ctx)
		n.mu.Lock()
		if n.client != nil {
			n.client.Close()
			n.client = nil
		}
		n.mu.Unlock()
		if n.s.ctx.Err() != nil {
			return
		}
		n.s.m.disconnects.Inc()
		n.log.Warn("Node connection ended, re-dialling", "err", err, "after", backoff)
		if time.Since(start) > 10*time.Second {
			backoff = n.s.cfg.RetryInterval
		}
		if !sleep(n.s.ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session dials, checks the node, and follows its events until the connection fails.
func (n *nodeConn) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, n.s.cfg.CallTimeout)
	cl, err := rpc.DialOptions(dctx, n.endpoint, rpc.WithHTTPAuth(n.secret.HTTPAuth()))
	cancel()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	sess := session{n: n, cl: cl}
	n.mu.Lock()
	n.client = cl
	n.mu.Unlock()

	var chain interop.ChainID
	if err := n.call(ctx, cl, &chain, "interop_chainID"); err != nil {
		return err
	}
	if !n.s.cfg.DependencySet.HasChain(chain) {
		return fmt.Errorf("node serves chain %s, which is not in the dependency set", chain)
	}
	n.mu.Lock()
	if n.chainOK && n.chain != chain {
		n.mu.Unlock()
		return fmt.Errorf("node now serves chain %s, was %s", chain, n.chain)
	}
	n.chain, n.chainOK = chain, true
	// A new connection may be a restarted node that forgot everything: assert it all.
	n.acked = promotion{}
	n.invalidated = eth.BlockSeal{}
	n.mu.Unlock()
	if _, ok := n.s.heads(chain); !ok {
		var anchor eth.DerivedBlockRefPair
		if err := n.call(ctx, cl, &anchor, "interop_anchorPoint"); err != nil {
			return err
		}
		if err := n.s.ensureChain(chain, anchor); err != nil {
			return err
		}
	}

	// Subscribe before the consistency check, so nothing the node does meanwhile is missed.
	events := make(chan interop.EventEntry, 128)
	sub, err := cl.Subscribe(ctx, interop.Namespace, events, interop.EventsTopic)
	// Pull when the transport cannot carry notifications (HTTP) or the node answered that
	// it does not offer the subscription; a failed connection is retried instead.
	var rpcErr rpc.Error
	pull := errors.Is(err, rpc.ErrNotificationsUnsupported) || errors.As(err, &rpcErr)
	if err != nil && !pull {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	if pull {
		sub = nil
	}
	if sub != nil {
		defer sub.Unsubscribe()
	}
	if err := n.checkConsistency(ctx, sess); err != nil {
		return err
	}
	n.log.Info("Managing node", "chain", chain, "mode", map[bool]string{true: "pull", false: "subscription"}[pull])
	n.s.m.connects.Inc()
	n.restoreExhausted()
	n.kickPromote()
	n.kickL1()
	if pull {
		return n.pullLoop(ctx, sess)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-sub.Err():
			if err == nil {
				err = errors.New("subscription closed")
			}
			return err
		case e := <-events:
			if e.Data == nil {
				if e.Close {
					return errors.New("node closed the event subscription")
				}
				continue
			}
			n.handle(ctx, sess, e.Data)
		case <-n.l1:
			n.provideL1(ctx, sess)
		case <-n.resetReq:
			n.resetForL1(ctx, sess)
		}
	}
}

// pullLoop reads events with interop_pullEvent, for nodes reached over plain HTTP.
func (n *nodeConn) pullLoop(ctx context.Context, sess session) error {
	for {
		var ev *interop.ManagedEvent
		err := n.call(ctx, sess.cl, &ev, "interop_pullEvent")
		switch {
		case err == nil && ev != nil:
			n.handle(ctx, sess, ev)
			continue
		case err != nil && interop.ErrorCode(err) != interop.CodeOutOfEvents:
			return err
		}
		t := time.NewTimer(n.s.cfg.PullInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-n.l1:
			t.Stop()
			n.provideL1(ctx, sess)
		case <-n.resetReq:
			t.Stop()
			n.resetForL1(ctx, sess)
		case <-t.C:
		}
	}
}

// handle acts on one event. Errors are logged: an inconsistency leads to a check and, if
// needed, a reset; anything else is retried by the node's next event or the next
// consistency check.
func (n *nodeConn) handle(ctx context.Context, sess session, ev *interop.ManagedEvent) {
	c := n.chainID()
	var errs []error
	if ev.Reset != nil {
		n.s.m.events.WithLabelValues(c.String(), "reset").Inc()
		n.log.Warn("Node asks for a reset", "reason", *ev.Reset)
		errs = append(errs, n.reset(ctx, sess))
	}
	if ev.UnsafeBlock != nil {
		n.s.m.events.WithLabelValues(c.String(), "unsafeBlock").Inc()
		errs = append(errs, n.s.onUnsafeBlock(ctx, c, sess, *ev.UnsafeBlock))
	}
	if ev.DerivationUpdate != nil {
		n.s.m.events.WithLabelValues(c.String(), "derivationUpdate").Inc()
		errs = append(errs, n.s.onDerivation(ctx, c, sess, *ev.DerivationUpdate))
	}
	if ev.ReplaceBlock != nil {
		n.s.m.events.WithLabelValues(c.String(), "replaceBlock").Inc()
		errs = append(errs, n.s.onReplace(ctx, c, sess, *ev.ReplaceBlock))
	}
	if ev.ExhaustL1 != nil {
		n.s.m.events.WithLabelValues(c.String(), "exhaustL1").Inc()
		src := ev.ExhaustL1.Source
		// Kept durably: a node does not say it again, so a supervisor that restarts
		// while the next L1 block is due must still know to provide it.
		w := n.s.db.batch()
		w.putJSON(exhaustedKey(n.endpoint), &src)
		if err := w.commit(); err != nil {
			errs = append(errs, fmt.Errorf("record exhausted L1: %w", err))
		}
		n.mu.Lock()
		n.exhausted = &src
		n.mu.Unlock()
		n.provideL1(ctx, sess)
	}
	err := errors.Join(errs...)
	if errors.Is(err, errInconsistent) {
		n.log.Warn("Node disagrees with the supervisor, checking it", "err", err)
		err = n.checkConsistency(ctx, sess)
	}
	if err != nil && ctx.Err() == nil {
		n.log.Warn("Cannot handle node event", "err", err)
	}
}

// provideL1 gives the node the L1 block after the one it exhausted, if L1 has it yet;
// otherwise the request stays pending until L1 advances.
func (n *nodeConn) provideL1(ctx context.Context, sess session) {
	n.mu.Lock()
	exhausted := n.exhausted
	n.mu.Unlock()
	if exhausted == nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, n.s.cfg.CallTimeout)
	next, err := n.s.l1.byNumber(lctx, exhausted.Number+1)
	cancel()
	if errors.Is(err, interop.ErrNotFound) {
		n.log.Debug("Next L1 block not there yet, keeping it pending", "after", exhausted)
		return
	}
	if err != nil {
		n.log.Warn("Cannot read the next L1 block", "after", exhausted, "err", err)
		return
	}
	if next.ParentHash != exhausted.Hash {
		// L1 reorged under what the node has read: the canonical next block does not
		// extend it, and giving it anyway would splice two forks. The supervisor's safe
		// records lose what the reorg dropped, and the node derives again from there.
		n.s.m.l1Mismatches.Inc()
		n.log.Warn("Next L1 block does not extend the node's last one, resetting the node", "last", exhausted, "next", next)
		if _, err := n.s.checkL1Reorg(ctx); err != nil {
			n.log.Warn("Cannot check the safe records against L1", "err", err)
			return
		}
		n.resetForL1(ctx, sess)
		return
	}
	if err := n.call(ctx, sess.cl, nil, "interop_provideL1", next); err != nil {
		n.log.Warn("Node did not take the next L1 block", "next", next, "err", err)
		return
	}
	n.mu.Lock()
	done := n.exhausted == exhausted
	if done {
		n.exhausted = nil
	}
	n.mu.Unlock()
	if done {
		n.forgetExhausted()
	}
	n.s.m.provided.Inc()
	n.log.Debug("Provided next L1 block", "next", next)
}

// forgetExhausted drops the durable record of a pending exhaust-L1.
func (n *nodeConn) forgetExhausted() {
	w := n.s.db.batch()
	w.delete(exhaustedKey(n.endpoint))
	if err := w.commit(); err != nil {
		n.log.Warn("Cannot clear the exhausted-L1 record", "err", err)
	}
}

// restoreExhausted takes up an exhaust-L1 recorded before a restart, unless the node
// has reported a newer one since.
func (n *nodeConn) restoreExhausted() {
	rec, err := n.s.db.exhausted(n.endpoint)
	if err != nil {
		n.log.Warn("Cannot read the exhausted-L1 record", "err", err)
		return
	}
	if rec == nil {
		return
	}
	n.mu.Lock()
	if n.exhausted == nil {
		n.exhausted = rec
	}
	n.mu.Unlock()
}

// promoteLoop sends the chain's cross-unsafe, cross-safe and finalized heads and pending
// invalidations: at once when they change, again after a failure, and every
// ReassertInterval regardless, which the node ignores when nothing changed.
func (n *nodeConn) promoteLoop() {
	defer n.s.wg.Done()
	reassert := time.NewTicker(n.s.cfg.ReassertInterval)
	defer reassert.Stop()
	var retry <-chan time.Time
	for {
		force := false
		select {
		case <-n.s.ctx.Done():
			return
		case <-n.promote:
		case <-retry:
		case <-reassert.C:
			force = true
		}
		retry = nil
		if !n.sendPromotions(n.s.ctx, force) {
			retry = time.After(n.s.cfg.RetryInterval)
		}
	}
}

// sendPromotions reports whether everything was acknowledged.
func (n *nodeConn) sendPromotions(ctx context.Context, force bool) bool {
	cl := n.currentClient()
	c := n.chainID()
	if cl == nil {
		return true // the next session kicks the promoter once connected
	}
	target, ok := n.s.promotionFor(c)
	if !ok {
		return true
	}
	n.mu.Lock()
	acked, invalidated := n.acked, n.invalidated
	n.mu.Unlock()
	done := true
	send := func(method string, args ...any) bool {
		if err := n.call(ctx, cl, nil, method, args...); err != nil {
			if ctx.Err() == nil {
				n.log.Debug("Node did not acknowledge", "method", method, "err", err)
			}
			n.s.m.promotionFailures.Inc()
			done = false
			return false
		}
		return true
	}
	if target.invalidate != nil && (force || *target.invalidate != invalidated) {
		if send("interop_invalidateBlock", *target.invalidate) {
			invalidated = *target.invalidate
		}
	}
	if force || target.crossUnsafe != acked.crossUnsafe {
		if send("interop_updateCrossUnsafe", target.crossUnsafe) {
			acked.crossUnsafe = target.crossUnsafe
		}
	}
	if force || target.crossSafe != acked.crossSafe {
		if send("interop_updateCrossSafe", target.crossSafe.Derived, target.crossSafe.Source) {
			acked.crossSafe = target.crossSafe
		}
	}
	if force || target.finalized != acked.finalized {
		if send("interop_updateFinalized", target.finalized) {
			acked.finalized = target.finalized
		}
	}
	n.mu.Lock()
	if n.client == cl {
		n.acked, n.invalidated = acked, invalidated
	}
	n.mu.Unlock()
	return done
}
