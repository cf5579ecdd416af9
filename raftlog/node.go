package raftlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Node drives one raft member: it owns the raft.RawNode, its durable
// Storage, the Transport to its peers and the StateMachine the committed
// log is applied to. Run is the only goroutine that touches the RawNode,
// the Storage's writing methods and the StateMachine; the other methods
// talk to it through channels or read values it publishes, and are safe
// for concurrent use.
type Node struct {
	cfg  Config
	log  *slog.Logger
	st   *Storage
	sm   StateMachine
	rn   *raft.RawNode
	tr   *Transport
	boot uint64
	seq  atomic.Uint64

	propc   chan *proposal
	recvc   chan *raftpb.Message
	statusc chan chan raft.Status
	reportc chan struct{} // capacity 1: reports pending

	reportMu    sync.Mutex
	unreachable map[uint64]struct{}
	snapStatus  map[uint64]raft.SnapshotStatus

	// Published by the raft goroutine.
	leader  atomic.Uint64
	term    atomic.Uint64
	state   atomic.Uint64 // raft.StateType
	applied atomic.Uint64
	conf    atomic.Pointer[raftpb.ConfState]

	watchMu   sync.Mutex
	leaderCh  chan struct{} // closed and replaced on a leader change
	appliedCh chan struct{} // closed and replaced when entries are applied

	started atomic.Bool
	quit    chan struct{}
	done    chan struct{} // closed when Run has returned (or Close without Run)
	closeMu sync.Mutex
	closed  bool

	// Owned by the raft goroutine.
	track       *propTracker
	confState   *raftpb.ConfState
	confChanged bool // a conf change was applied in this Ready
	appliedIdx  uint64
}

// NewNode opens the storage in cfg.DataDir, restores sm from its latest
// snapshot, and bootstraps the InitialVoters if the storage is empty and
// this node is one of them. It does not start any goroutine: call Run.
func NewNode(cfg Config, sm StateMachine) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sm == nil {
		return nil, errors.New("raftlog: node: nil StateMachine")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger.With("node_id", cfg.ID)
	scfg := cfg.Storage
	scfg.SnapshotEntries = cfg.SnapshotEntries
	if scfg.Logger == nil {
		scfg.Logger = logger
	}
	st, err := OpenStorage(cfg.DataDir, scfg)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: logger, st: st, sm: sm,
		boot:        rand.Uint64(),
		propc:       make(chan *proposal, 64),
		recvc:       make(chan *raftpb.Message, 256),
		statusc:     make(chan chan raft.Status),
		reportc:     make(chan struct{}, 1),
		unreachable: map[uint64]struct{}{},
		snapStatus:  map[uint64]raft.SnapshotStatus{},
		leaderCh:    make(chan struct{}),
		appliedCh:   make(chan struct{}),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		track:       newTracker(),
		confState:   &raftpb.ConfState{},
	}
	if err := n.init(); err != nil {
		_ = st.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) init() error {
	snap, err := n.st.Snapshot()
	if err != nil {
		return fmt.Errorf("raftlog: node: %w", err)
	}
	if raft.IsEmptySnap(snap) {
		n.conf.Store(proto.Clone(n.confState).(*raftpb.ConfState))
	} else if err := n.restore(snap); err != nil { // no proposal is tracked yet
		return fmt.Errorf("raftlog: node: %w", err)
	}
	n.applied.Store(n.appliedIdx)
	c := n.cfg
	n.rn, err = raft.NewRawNode(&raft.Config{
		ID:                        c.ID,
		ElectionTick:              c.ElectionTicks,
		HeartbeatTick:             c.HeartbeatTicks,
		Storage:                   n.st,
		Applied:                   n.appliedIdx,
		MaxSizePerMsg:             c.MaxSizePerMsg,
		MaxInflightMsgs:           c.MaxInflightMsgs,
		MaxUncommittedEntriesSize: 64 << 20, // bounds a leader flooded with proposals
		CheckQuorum:               c.CheckQuorum,
		PreVote:                   c.PreVote,
		DisableProposalForwarding: true, // followers answer ErrNotLeader instead
		Logger:                    RaftLogger(n.log),
	})
	if err != nil {
		return fmt.Errorf("raftlog: node: %w", err)
	}
	last, err := n.st.LastIndex()
	if err != nil {
		return fmt.Errorf("raftlog: node: %w", err)
	}
	if last == 0 && slices.Contains(c.InitialVoters, c.ID) {
		peers := make([]raft.Peer, 0, len(c.InitialVoters))
		for _, id := range c.InitialVoters {
			peers = append(peers, raft.Peer{ID: id})
		}
		if err := n.rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("raftlog: node: bootstrap: %w", err)
		}
		n.log.Info("raft bootstrapped", "voters", c.InitialVoters)
	} else if last == 0 {
		n.log.Info("raft storage empty; waiting to be added as a learner", "initial_voters", c.InitialVoters)
	}
	n.tr, err = NewTransport(c.ID, c.Peers, c.Transport, nodeHandler{n}, n.log)
	return err
}

// Run drives raft until ctx is done or Close is called, then closes the
// transport and the storage. It returns nil when stopped that way, and an
// error if the storage or the state machine failed: the node cannot go on
// (its durable state is intact; restart it). Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run called twice", ErrStopped)
	}
	err := n.loop(ctx)
	n.track.failAll(ErrStopped)
	n.state.Store(uint64(raft.StateFollower))
	n.setLeader(0)
	n.shutdown()
	return err
}

func (n *Node) shutdown() {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	_ = n.tr.Close()
	if err := n.st.Close(); err != nil {
		n.log.Error("raft storage close", "err", err)
	}
	close(n.done)
}

// Close stops Run (if running) and waits for it; without Run it releases
// the storage and transport. It is idempotent.
func (n *Node) Close() error {
	n.closeMu.Lock()
	select {
	case <-n.quit:
	default:
		close(n.quit)
	}
	n.closeMu.Unlock()
	if !n.started.CompareAndSwap(false, true) {
		<-n.done // Run is (or was) running and closes done
		return nil
	}
	n.shutdown()
	return nil
}

// Done is closed once the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

const maxBatch = 256 // events handled between two Readies

func (n *Node) loop(ctx context.Context) error {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	// A sole voter need not wait an election timeout: it campaigns as soon
	// as its applied configuration says it is alone (at once from a
	// snapshot, or after re-applying the bootstrap entries).
	soloCheck := true
	solo := func() {
		if cs := n.confState; soloCheck && len(cs.GetVoters()) > 0 {
			soloCheck = false
			if len(cs.GetVoters()) == 1 && cs.GetVoters()[0] == n.cfg.ID && len(cs.GetVotersOutgoing()) == 0 {
				_ = n.rn.Campaign()
			}
		}
	}
	solo()
	for {
		// Advance may step messages to self (votes, append acks) that
		// yield another Ready at once: handle until there is none.
		for n.rn.HasReady() {
			if err := n.handleReady(n.rn.Ready()); err != nil {
				return err
			}
			solo()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.quit:
			return nil
		case <-ticker.C:
			n.rn.Tick()
		case m := <-n.recvc:
			n.step(m)
		case p := <-n.propc:
			n.propose(p)
		case <-n.reportc:
			n.drainReports()
		case c := <-n.statusc:
			c <- n.rn.Status()
		}
	batch:
		for range maxBatch {
			select {
			case m := <-n.recvc:
				n.step(m)
			case p := <-n.propc:
				n.propose(p)
			default:
				break batch
			}
		}
	}
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil {
		n.log.Debug("raft message ignored", "from", m.GetFrom(), "type", m.GetType(), "err", err)
	}
}

func (n *Node) propose(p *proposal) {
	st := n.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		p.finish(outcome{err: &NotLeaderError{Leader: st.Lead}})
		return
	}
	var err error
	if p.cc != nil {
		if err = p.cc.check(n.confState); err == nil {
			err = n.rn.ProposeConfChange(p.cc.cc)
		} else if errors.Is(err, errNoChange) {
			p.finish(outcome{index: n.appliedIdx, result: proto.Clone(n.confState)})
			return
		}
	} else {
		err = n.rn.Propose(p.data)
	}
	if err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			err = fmt.Errorf("%w: %w", ErrProposalDropped, err)
		}
		p.finish(outcome{err: err})
		return
	}
	n.track.add(p)
}

func (n *Node) drainReports() {
	n.reportMu.Lock()
	un, snaps := n.unreachable, n.snapStatus
	n.unreachable, n.snapStatus = map[uint64]struct{}{}, map[uint64]raft.SnapshotStatus{}
	n.reportMu.Unlock()
	for id := range un {
		n.rn.ReportUnreachable(id)
	}
	for id, s := range snaps {
		n.rn.ReportSnapshot(id, s)
	}
}

// nodeHandler connects the Transport to the raft goroutine.
type nodeHandler struct{ n *Node }

func (h nodeHandler) Receive(ctx context.Context, m *raftpb.Message) error {
	select {
	case h.n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ErrStopped
	case <-h.n.done:
		return ErrStopped
	}
}

func (h nodeHandler) ReportUnreachable(id uint64) {
	h.n.report(func() { h.n.unreachable[id] = struct{}{} })
}

func (h nodeHandler) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	h.n.report(func() { h.n.snapStatus[id] = s })
}

// report records a transport report for the raft goroutine; reports per
// peer coalesce, so the pending set is bounded by the peer count.
func (n *Node) report(set func()) {
	n.reportMu.Lock()
	set()
	n.reportMu.Unlock()
	select {
	case n.reportc <- struct{}{}:
	default:
	}
}

// Serve reads raft messages from an inbound internal-link connection
// authenticated as node peerID with purpose 'R' (see Transport.Serve). It
// blocks until the connection ends.
func (n *Node) Serve(conn net.Conn, peerID int32) error { return n.tr.Serve(conn, peerID) }

// Transport returns the node's transport (for Serve and Stats).
func (n *Node) Transport() *Transport { return n.tr }

// ID returns the node's raft id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// LeaderID returns the leader this node knows of (0: none).
func (n *Node) LeaderID() uint64 { return n.leader.Load() }

// IsLeader reports whether this node is the raft leader (the controller).
func (n *Node) IsLeader() bool { return raft.StateType(n.state.Load()) == raft.StateLeader }

// Term returns the latest raft term this node persisted.
func (n *Node) Term() uint64 { return n.term.Load() }

// AppliedIndex returns the index of the last entry applied to the state
// machine.
func (n *Node) AppliedIndex() uint64 { return n.applied.Load() }

// ConfState returns the membership as of the applied index (a copy).
func (n *Node) ConfState() *raftpb.ConfState {
	return proto.Clone(n.conf.Load()).(*raftpb.ConfState)
}

// LeaderChanged returns a channel closed at the next change of LeaderID.
// Read LeaderID after taking the channel, so no change is missed.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	return n.leaderCh
}

func (n *Node) setLeader(id uint64) {
	if n.leader.Swap(id) == id {
		return
	}
	n.watchMu.Lock()
	close(n.leaderCh)
	n.leaderCh = make(chan struct{})
	n.watchMu.Unlock()
	if f := n.cfg.OnLeaderChange; f != nil {
		f(id, n.term.Load())
	}
}

func (n *Node) setApplied(index uint64) {
	n.applied.Store(index)
	n.watchMu.Lock()
	close(n.appliedCh)
	n.appliedCh = make(chan struct{})
	n.watchMu.Unlock()
}

// WaitApplied waits until the applied index reaches index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.watchMu.Lock()
		ch := n.appliedCh
		n.watchMu.Unlock()
		if n.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrStopped
		}
	}
}

// Status returns raft's full status (progress of every peer when leader),
// taken by the raft goroutine.
func (n *Node) Status(ctx context.Context) (raft.Status, error) {
	c := make(chan raft.Status, 1)
	select {
	case n.statusc <- c:
	case <-ctx.Done():
		return raft.Status{}, ctx.Err()
	case <-n.done:
		return raft.Status{}, ErrStopped
	}
	select {
	case s := <-c:
		return s, nil
	case <-ctx.Done():
		return raft.Status{}, ctx.Err()
	}
}
