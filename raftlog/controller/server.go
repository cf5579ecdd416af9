package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/meta"
)

// ErrClosed reports a Server or Client used after Close.
var ErrClosed = errors.New("controller: closed")

// barrier is the command a new controller commits before it acts: every
// node rejects it (no broker has id -1), so it changes nothing, but once it
// is applied locally the image holds every entry of earlier terms.
var barrier = meta.FenceBroker{NodeID: -1}

// Server runs the controller on one raft node: while the node leads, Run
// ticks the Core and proposes its commands, and Serve answers controller
// RPCs. On a node that does not lead, every call is answered NOT_CONTROLLER
// with the known leader. Safe for concurrent use.
type Server struct {
	cfg  Config
	node *raftlog.Node
	mm   *raftlog.MetaMachine
	log  *slog.Logger
	id   int32

	mu       sync.Mutex // guards core, leading, leadTerm
	core     *Core
	leading  bool   // the core was initialised (BecameLeader) for leadTerm
	leadTerm uint64 // raft term of the current leadership

	ctx    context.Context // cancelled by Close; parent of every request
	cancel context.CancelFunc
	conns  connSet
}

// NewServer returns a controller server for node, whose state machine is
// mm. Zero Config fields take their defaults; call cfg.Validate first.
func NewServer(cfg Config, node *raftlog.Node, mm *raftlog.MetaMachine) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, node: node, mm: mm, log: cfg.Logger.With("component", "controller"), id: int32(node.ID()),
		core: NewCore(cfg), ctx: ctx, cancel: cancel,
	}
}

// Run drives the controller until ctx ends or the node stops: every
// TickInterval (and at each leader change), if the node leads, it makes
// sure the core was initialised for this term (after a barrier entry, so
// the image is current) and proposes what Core.Tick returns, one command
// after another. It returns nil when ctx ends or the node stops.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	for {
		changed := s.node.LeaderChanged()
		s.step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.node.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
		}
	}
}

func (s *Server) step(ctx context.Context) {
	if !s.node.IsLeader() {
		s.mu.Lock()
		s.leading = false
		s.mu.Unlock()
		return
	}
	term := s.node.Term()
	s.mu.Lock()
	ready := s.leading && s.leadTerm == term
	s.mu.Unlock()
	if !ready {
		bctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		_, _, err := raftlog.ProposeCommand(bctx, s.node, barrier)
		cancel()
		if err != nil && !errors.Is(err, meta.ErrUnknownBroker) {
			s.log.Debug("controller barrier failed", "term", term, "err", err)
			return
		}
		s.mu.Lock()
		s.core.BecameLeader(time.Now(), s.mm.Image())
		s.leading, s.leadTerm = true, term
		s.mu.Unlock()
		s.log.Info("controller active", "node", s.id, "term", term, "index", s.mm.Image().Index())
	}
	s.mu.Lock()
	cmds := s.core.Tick(time.Now(), s.mm.Image())
	s.mu.Unlock()
	if len(cmds) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.propose(pctx, cmds); err != nil {
		s.log.Debug("controller tick proposals stopped", "err", err)
	}
}

// propose commits cmds in order. A command the state machine rejects (its
// epochs went stale meanwhile) is skipped; any other failure stops.
func (s *Server) propose(ctx context.Context, cmds []meta.Command) error {
	for _, cmd := range cmds {
		idx, _, err := raftlog.ProposeCommand(ctx, s.node, cmd)
		if err == nil {
			s.log.Debug("controller command committed", "type", cmd.Type(), "index", idx)
			continue
		}
		if transient(err) {
			return fmt.Errorf("controller: propose %v: %w", cmd.Type(), err)
		}
		s.log.Debug("controller command rejected", "type", cmd.Type(), "index", idx, "err", err)
	}
	return nil
}

// transient reports a proposal failure that is not the state machine's
// verdict: the command may not have been committed.
func transient(err error) bool {
	return errors.Is(err, raftlog.ErrNotLeader) || errors.Is(err, raftlog.ErrStopped) ||
		errors.Is(err, raftlog.ErrProposalDropped) || errors.Is(err, raftlog.ErrProposalUnknown) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// active reports whether this node is the controller and ready to serve;
// otherwise it returns the leader to redirect to (0: unknown).
func (s *Server) active() (bool, int32) {
	if !s.node.IsLeader() {
		return false, int32(s.node.LeaderID())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading && s.leadTerm == s.node.Term(), s.id
}

// MemberDead passes gossip's dead verdict to the core: the node's session
// ends now and the next tick fences it (by a committed FenceBroker). On a
// node that does not lead it does nothing: a new controller starts every
// session afresh.
func (s *Server) MemberDead(nodeID int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leading {
		s.log.Info("gossip reports broker dead: ending its session", "node", nodeID)
		s.core.MemberDead(time.Now(), nodeID)
	}
}

// Close stops serving: connections in Serve are closed, requests in flight
// are cancelled, and Run returns. Idempotent.
func (s *Server) Close() error {
	s.cancel()
	s.conns.closeAll()
	return nil
}
