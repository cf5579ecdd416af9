package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/gossip"
	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// broadcast wakes every waiter when the node's cluster state changed (an image applied, a
// registration or a heartbeat verdict).
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// waitFor waits until cond holds, re-checking on every cluster state change, bounded by ctx.
func (n *Node) waitFor(ctx context.Context, cond func() bool) error {
	for {
		ch := n.changed.wait()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (n *Node) identity() raftlog.Identity {
	n.identMu.Lock()
	defer n.identMu.Unlock()
	return n.ident
}

func (n *Node) setIdentity(id raftlog.Identity) {
	n.identMu.Lock()
	n.ident = id
	n.identMu.Unlock()
}

// controllerHint is where controller calls go first: the raft leader this node knows, else (a
// restarted broker that no leader has reached yet, for instance because the leader still dials its
// old address) another broker gossip sees alive, in turn, whose NOT_CONTROLLER answer names the
// leader.
func (n *Node) controllerHint() int32 {
	if l := n.raft.LeaderID(); l != 0 {
		return int32(l)
	}
	return n.gossipHint()
}

// gossipHint returns the next broker, in turn, that gossip sees alive (0: none, or no gossip).
func (n *Node) gossipHint() int32 {
	if n.cp == nil || n.cp.gossip == nil {
		return 0
	}
	alive := alivePeers(n.cp.gossip, n.cfg.NodeID)
	if len(alive) == 0 {
		return 0
	}
	return alive[int(n.hintTurn.Add(1))%len(alive)]
}

// alivePeers returns the node ids, sorted, of the members gossip sees alive, self excluded.
func alivePeers(g *gossip.Membership, self int32) []int32 {
	var alive []int32
	for _, m := range g.Members() {
		if m.State == gossip.StateAlive && m.Meta.NodeID != self {
			alive = append(alive, m.Meta.NodeID)
		}
	}
	slices.Sort(alive)
	return alive
}

// registeredLive reports whether the image holds this broker's current registration, unfenced.
func (n *Node) registeredLive(img *meta.Image) bool {
	epoch := n.brokerEpoch.Load()
	if epoch == 0 {
		return false
	}
	b, ok := img.Broker(n.cfg.NodeID)
	return ok && b.Epoch == epoch && !b.Fenced
}

// mayLead reports whether this broker may act as a partition leader on img: registered, unfenced
// in the image, and not told by the controller (or by silence) that it is fenced. A zombie whose
// heartbeats fail leads nothing.
func (n *Node) mayLead(img *meta.Image) bool {
	return n.registeredLive(img) && !n.hbFenced.Load()
}

// monoNow is the monotonic time since clockBase, in nanoseconds.
func (n *Node) monoNow() int64 { return int64(time.Since(n.clockBase)) }

// leaseGrant is one acknowledged heartbeat: it covers writes until until (monoNow units: the send
// time plus the lease the controller granted, less its drift margin) once the local image index has
// reached index.
type leaseGrant struct {
	until int64
	index uint64
}

func (g leaseGrant) covers(now int64, applied uint64) bool {
	return now < g.until && applied >= g.index
}

// maxPendingGrants bounds the grants waiting for the local image: enough to keep a lease through
// a lag of several heartbeat intervals.
const maxPendingGrants = 16

// leaseState holds the longest grant the local image already covers, and the grants still
// waiting for it (oldest first); a waiting grant is held once the image reaches its index, so
// writes keep flowing while the image catches up. States are immutable: the heartbeat loop adds
// grants and the reconciler promotes them, each with a CAS.
type leaseState struct {
	held    leaseGrant
	pending []leaseGrant
}

// valid reports whether a grant covers now with the local image at applied.
func (st *leaseState) valid(now int64, applied uint64) bool {
	if st == nil {
		return false
	}
	if st.held.covers(now, applied) {
		return true
	}
	for _, g := range st.pending {
		if g.covers(now, applied) {
			return true
		}
	}
	return false
}

// promoted returns the state with every pending grant the image at applied covers folded into
// held; st itself when none is.
func (st *leaseState) promoted(applied uint64) *leaseState {
	if st == nil || !slices.ContainsFunc(st.pending, func(g leaseGrant) bool { return g.index <= applied }) {
		return st
	}
	out := &leaseState{held: st.held}
	for _, g := range st.pending {
		switch {
		case g.index > applied:
			out.pending = append(out.pending, g)
		case g.until > out.held.until:
			out.held = g
		}
	}
	return out
}

// with returns the state after grant g arrived with the local image at applied.
func (st *leaseState) with(g leaseGrant, applied uint64) *leaseState {
	out := &leaseState{}
	if st != nil {
		out.held = st.held
		out.pending = append(out.pending, st.pending[max(0, len(st.pending)-maxPendingGrants+1):]...)
	}
	out.pending = append(out.pending, g)
	return out.promoted(applied)
}

// leaseValid reports whether an acknowledged heartbeat covers this moment and the local image.
func (n *Node) leaseValid() bool {
	return n.lease.Load().valid(n.monoNow(), n.registry().image().Index())
}

// extendLease records a heartbeat sent at sentAt (monoNow units) and acknowledged by a controller
// whose image was at index, granting lease. The grant ends a thirty-second of the lease early: the
// controller counts on its own clock, which may run a little slower.
func (n *Node) extendLease(sentAt int64, index uint64, lease time.Duration) {
	if lease <= 0 {
		return
	}
	g := leaseGrant{until: sentAt + int64(lease-lease/32), index: index}
	n.updateLease(func(st *leaseState) *leaseState { return st.with(g, n.registry().image().Index()) })
	n.changed.notify() // readiness (caughtUp) includes the lease
}

// promoteLease is called once the local replicas reflect the image at applied, so a grant waiting
// for it becomes the held one even if the image lags every acknowledgement by more than a
// heartbeat interval.
func (n *Node) promoteLease(applied uint64) {
	n.updateLease(func(st *leaseState) *leaseState { return st.promoted(applied) })
}

func (n *Node) updateLease(f func(*leaseState) *leaseState) {
	for {
		old := n.lease.Load()
		nw := f(old)
		if nw == old || n.lease.CompareAndSwap(old, nw) {
			return
		}
	}
}

func (n *Node) setHBFenced(v bool) {
	if n.hbFenced.Swap(v) != v {
		if v {
			n.lg.Warn("broker fenced: not leading any partition until the controller admits it again")
		}
		n.kickReconcile()
	}
}

// brokerLoop keeps this broker registered with the controller and heartbeating; a stale epoch or a
// lost session makes it stop leading and register again.
func (n *Node) brokerLoop(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		epoch, err := n.registerOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.lg.Debug("broker registration", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		n.heartbeatLoop(ctx, epoch)
	}
}

// registerOnce registers this broker (a new broker epoch) once a controller is known.
func (n *Node) registerOnce(ctx context.Context) (int64, error) {
	id := n.identity()
	fresh := id.ClusterID == ""
	if fresh {
		id.NodeID = n.cfg.NodeID
		id.ClusterID = n.cfg.ClusterID
		if id.ClusterID == "" {
			id.ClusterID = n.mm.Image().ClusterID()
		}
		if id.ClusterID == "" {
			// A brand-new cluster: the first registration names it.
			var raw [16]byte
			_, _ = rand.Read(raw[:])
			id.ClusterID = base64.RawURLEncoding.EncodeToString(raw[:])
		}
		n.identMu.Lock()
		if n.freshIncarnation == ([16]byte{}) {
			_, _ = rand.Read(n.freshIncarnation[:])
		}
		id.Incarnation = n.freshIncarnation
		n.identMu.Unlock()
	}
	rb := n.registration(id)
	rctx, cancel := context.WithTimeout(ctx, n.cfg.SessionTimeout)
	epoch, err := n.ctrl.register(rctx, rb)
	cancel()
	if err != nil {
		return 0, err
	}
	if fresh {
		// Persist the identity only once the cluster accepted it (its cluster id is now final).
		if err := raftlog.WriteIdentity(n.cp.raftDir, id); err != nil {
			return 0, err
		}
		n.setIdentity(id)
		if g := n.cp.gossip; g != nil {
			if err := g.SetMeta(n.gossipMeta(), time.Second); err != nil {
				n.lg.Warn("gossip meta update", "err", err)
			}
		}
	}
	n.brokerEpoch.Store(epoch)
	n.setHBFenced(false)
	n.lg.Info("broker registered", "broker_epoch", epoch, "cluster_id", id.ClusterID)
	n.kickReconcile()
	return epoch, nil
}

// registration is this broker's RegisterBroker for identity id.
func (n *Node) registration(id raftlog.Identity) meta.RegisterBroker {
	return meta.RegisterBroker{NodeID: n.cfg.NodeID, ClusterID: id.ClusterID, Incarnation: id.Incarnation,
		Addresses: n.advertisedAddresses(), Rack: n.cfg.Rack}
}

// heartbeatLoop heartbeats every HeartbeatInterval until the registration is stale (return: register
// again) or ctx ends. Without a successful heartbeat for SessionTimeout the broker treats itself as
// fenced: the controller has fenced it by then.
func (n *Node) heartbeatLoop(ctx context.Context, epoch int64) {
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	lastOK := time.Now()
	for {
		hctx, cancel := context.WithTimeout(ctx, n.cfg.HeartbeatInterval*2)
		sentAt := n.monoNow()
		reply, err := n.ctrl.heartbeat(hctx, epoch, n.shuttingDown.Load())
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			n.lg.Debug("heartbeat", "err", err)
			if time.Since(lastOK) > n.cfg.SessionTimeout {
				n.setHBFenced(true)
			}
		case reply.errorCode == wire.CodeStaleBrokerEpoch:
			n.lg.Warn("heartbeat: stale broker epoch, registering again", "broker_epoch", epoch)
			n.setHBFenced(true)
			return
		case reply.errorCode != 0:
			n.lg.Debug("heartbeat refused", "code", reply.errorCode)
		default:
			lastOK = time.Now()
			if !reply.fenced {
				n.extendLease(sentAt, reply.metadataOffset, reply.lease)
			}
			n.setHBFenced(reply.fenced)
		}
		n.metrics.setFenced(n.hbFenced.Load() || !n.registeredLive(n.mm.Image()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// controlledShutdown asks the controller to move every leadership away from this broker and waits,
// bounded by ControlledShutdownTimeout, until the local image shows none led here. It is skipped
// when no other unfenced broker could take over.
func (n *Node) controlledShutdown(ctx context.Context) error {
	epoch := n.brokerEpoch.Load()
	if epoch == 0 || n.raft == nil {
		return nil
	}
	if !n.otherLiveBrokers() {
		return nil
	}
	n.shuttingDown.Store(true)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ControlledShutdownTimeout)
	defer cancel()
	start := time.Now()
	for {
		err := n.ctrl.controlledShutdown(ctx, epoch)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("node: controlled shutdown: %w", err)
		}
		n.lg.Debug("controlled shutdown", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	err := n.waitFor(ctx, func() bool { return n.movablePartitions(n.registry().image()) == 0 })
	if err != nil {
		return fmt.Errorf("node: controlled shutdown: %d partitions still led here: %w",
			n.movablePartitions(n.registry().image()), err)
	}
	n.lg.Info("controlled shutdown: leadership moved away", "elapsed", time.Since(start))
	return nil
}

// otherLiveBrokers reports whether another broker could take over leadership: unfenced in the
// image and, with gossip, seen alive by it (brokers that left or died are not waited for).
func (n *Node) otherLiveBrokers() bool {
	for _, b := range n.mm.Image().Brokers() {
		if b.NodeID == n.cfg.NodeID || b.Fenced {
			continue
		}
		if g := n.cp.gossip; g != nil {
			if m, ok := g.Member(b.NodeID); !ok || m.State != gossip.StateAlive || m.Meta.Leaving {
				continue
			}
		}
		return true
	}
	return false
}

// movablePartitions counts the partitions img says this broker leads although another ISR member is
// an unfenced broker: those the controller can move away. A partition whose ISR is this broker
// alone keeps its leader until the broker is fenced (Kafka does the same).
func (n *Node) movablePartitions(img *meta.Image) int {
	c := 0
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if p.Leader != n.cfg.NodeID {
				continue
			}
			for _, r := range p.ISR {
				if b, ok := img.Broker(r); ok && r != n.cfg.NodeID && !b.Fenced {
					c++
					break
				}
			}
		}
	}
	return c
}

// ledPartitions counts the partitions img says this broker leads.
func (n *Node) ledPartitions(img *meta.Image) int {
	c := 0
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == n.cfg.NodeID {
				c++
			}
		}
	}
	return c
}
