package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// ErrPeerMismatch reports a Register, Heartbeat, ControlledShutdown or
// forwarded AlterPartition for a node id other than the one the link
// authenticated (wire code CLUSTER_AUTHORIZATION_FAILED).
var ErrPeerMismatch = errors.New("controller: node id differs from the authenticated peer")

// maxShutdownRounds bounds how often ControlledShutdown recomputes the
// moves after some were rejected by concurrent changes.
const maxShutdownRounds = 8

// Serve answers controller RPCs on conn, an authenticated link connection
// of purpose 'C' from node peerID, one request at a time, until the peer
// closes it (nil), it fails, or the Server is closed. It closes conn.
func (s *Server) Serve(conn net.Conn, peerID int32) error {
	defer conn.Close()
	if !s.conns.add(conn) {
		return ErrClosed
	}
	defer s.conns.remove(conn)
	for {
		body, err := readFrame(conn, s.cfg.MaxMessageSize)
		if err != nil {
			if errors.Is(err, io.EOF) || s.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("controller: serve node %d: %w", peerID, err)
		}
		req, err := decodeRequest(body)
		if err != nil {
			return fmt.Errorf("controller: serve node %d: %w", peerID, err)
		}
		resp := s.handle(peerID, req)
		if err := conn.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout)); err != nil {
			return fmt.Errorf("controller: serve node %d: %w", peerID, err)
		}
		if _, err := conn.Write(encodeResponse(resp)); err != nil {
			return fmt.Errorf("controller: serve node %d: write: %w", peerID, err)
		}
	}
}

func (s *Server) handle(peer int32, req *request) *response {
	resp := &response{kind: req.kind}
	ok, leader := s.active()
	if !ok {
		resp.code, resp.leader = wire.CodeNotController, leader
		resp.message = fmt.Sprintf("node %d is not the controller", s.id)
		return resp
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	var err error
	switch req.kind {
	case kindRegister:
		resp.epoch, err = s.register(ctx, peer, req.register)
	case kindHeartbeat:
		resp.heartbeat, err = s.heartbeat(ctx, peer, req.heartbeat)
		resp.code = resp.heartbeat.ErrorCode
	case kindControlledShutdown:
		err = s.controlledShutdown(ctx, peer, req.nodeID, req.epoch)
	case kindReplicasOffline:
		err = s.replicasOffline(ctx, peer, req.nodeID, req.epoch, req.offline)
	case kindPropose:
		resp.index, resp.producerIDs, resp.rejected, err = s.forward(ctx, peer, req.command)
	case kindReplaceVoter:
		err = s.replaceVoter(ctx, req.dead, req.new)
	case kindStatus:
		resp.status = s.status()
	}
	if err != nil {
		resp.code, resp.message = codeFor(err), err.Error()
		switch resp.code {
		case wire.CodeNotController:
			resp.leader = int32(s.node.LeaderID())
		case wire.CodeUnknownServerError:
			s.log.Warn("controller request failed", "request", req.kind, "peer", peer, "err", err)
		}
	}
	return resp
}

func (s *Server) register(ctx context.Context, peer int32, g Registration) (int64, error) {
	if g.NodeID != peer {
		return 0, fmt.Errorf("%w: register %d from %d", ErrPeerMismatch, g.NodeID, peer)
	}
	idx, _, err := raftlog.ProposeCommand(ctx, s.node, g)
	if err != nil {
		return 0, fmt.Errorf("controller: register broker %d: %w", g.NodeID, err)
	}
	cs := s.node.ConfState()
	id := uint64(g.NodeID)
	member := slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetVotersOutgoing(), id) ||
		slices.Contains(cs.GetLearners(), id) || slices.Contains(cs.GetLearnersNext(), id)
	if !member {
		if err := s.node.AddLearner(ctx, id); err != nil {
			return 0, fmt.Errorf("controller: add broker %d as raft learner: %w", g.NodeID, err)
		}
		s.log.Info("broker added as raft learner", "node", g.NodeID)
	}
	s.log.Info("broker registered", "node", g.NodeID, "epoch", idx, "rack", g.Rack)
	return int64(idx), nil
}

func (s *Server) heartbeat(ctx context.Context, peer int32, hb Heartbeat) (HeartbeatReply, error) {
	if hb.NodeID != peer {
		return HeartbeatReply{}, fmt.Errorf("%w: heartbeat for %d from %d", ErrPeerMismatch, hb.NodeID, peer)
	}
	s.mu.Lock()
	reply, cmds := s.core.Heartbeat(time.Now(), s.mm.Image(), hb)
	s.mu.Unlock()
	if len(cmds) == 0 {
		return reply, nil
	}
	if err := s.propose(ctx, cmds); err != nil {
		return HeartbeatReply{}, err
	}
	img := s.mm.Image()
	if b, ok := img.Broker(hb.NodeID); ok && b.Epoch == hb.BrokerEpoch {
		reply.Fenced = b.Fenced
	}
	reply.MetadataOffset = max(reply.MetadataOffset, img.Index())
	return reply, nil
}

func (s *Server) controlledShutdown(ctx context.Context, peer, node int32, epoch int64) error {
	if node != peer {
		return fmt.Errorf("%w: controlled shutdown of %d from %d", ErrPeerMismatch, node, peer)
	}
	for range maxShutdownRounds {
		s.mu.Lock()
		cmds, err := s.core.ControlledShutdown(time.Now(), s.mm.Image(), node, epoch)
		s.mu.Unlock()
		if err != nil || len(cmds) == 0 {
			return err
		}
		s.log.Info("controlled shutdown: moving leadership away", "node", node, "changes", len(cmds))
		if err := s.propose(ctx, cmds); err != nil {
			return err
		}
	}
	return fmt.Errorf("controller: controlled shutdown of %d: moves still rejected after %d rounds: %w",
		node, maxShutdownRounds, context.DeadlineExceeded)
}

// forward proposes a command a broker sent. Registration and (un)fencing
// have their own calls, and ChangePartition moves leaders, which only the
// controller's own rules do: all four are refused. An AlterPartition must
// come from its proposer and passes the core's KIP-841 filter first; the
// items taken out there and those meta.Apply refused are returned, unless
// the whole command failed.
func (s *Server) replicasOffline(ctx context.Context, peer, node int32, epoch int64, parts []PartitionRef) error {
	if node != peer {
		return fmt.Errorf("%w: replicas offline on %d reported by %d", ErrPeerMismatch, node, peer)
	}
	for range maxShutdownRounds {
		s.mu.Lock()
		cmds, err := s.core.ReplicasOffline(time.Now(), s.mm.Image(), node, epoch, parts)
		s.mu.Unlock()
		if err != nil || len(cmds) == 0 {
			return err
		}
		s.log.Warn("replicas offline (log failure): moving them out of ISRs and leadership", "node", node, "changes", len(cmds))
		if err := s.propose(ctx, cmds); err != nil {
			return err
		}
	}
	return fmt.Errorf("controller: replicas offline on %d: moves still rejected after %d rounds: %w",
		node, maxShutdownRounds, context.DeadlineExceeded)
}

func (s *Server) forward(ctx context.Context, peer int32, data []byte) (uint64, *meta.ProducerIDBlock, []meta.PartitionRejection, error) {
	cmd, err := meta.DecodeCommand(data)
	if err != nil {
		return 0, nil, nil, err
	}
	switch c := cmd.(type) {
	case meta.RegisterBroker, meta.FenceBroker, meta.UnfenceBroker, meta.ChangePartition:
		return 0, nil, nil, fmt.Errorf("%w: %v", ErrForbiddenCommand, cmd.Type())
	case meta.AlterPartition:
		idx, rejected, err := s.alterPartition(ctx, peer, c)
		return idx, nil, rejected, err
	}
	idx, delta, err := raftlog.ProposeCommand(ctx, s.node, cmd)
	return idx, delta.ProducerIDs, nil, err
}

// alterPartition proposes a leader's ISR changes. The filter and the
// commit are not atomic: a broker entering controlled shutdown in between
// may still be added, but every later AlterPartition is filtered and the
// shutdown's moves (repeated by each Tick while it lasts) take it out again.
func (s *Server) alterPartition(ctx context.Context, peer int32, c meta.AlterPartition) (uint64, []meta.PartitionRejection, error) {
	if c.ProposerID != peer {
		return 0, nil, fmt.Errorf("%w: AlterPartition by %d from %d", ErrPeerMismatch, c.ProposerID, peer)
	}
	s.mu.Lock()
	c, dropped := s.core.FilterAlterPartition(time.Now(), s.mm.Image(), c)
	s.mu.Unlock()
	for _, d := range dropped {
		s.log.Debug("ISR expansion refused", "leader", peer, "topic_id", d.TopicID, "partition", d.Partition, "err", d.Err)
	}
	// Proposed even when every item was dropped: the proposer check still
	// runs, and the answer carries a real index.
	idx, delta, err := raftlog.ProposeCommand(ctx, s.node, c)
	if err != nil {
		return idx, nil, err
	}
	return idx, append(dropped, delta.Rejected...), nil
}

func (s *Server) replaceVoter(ctx context.Context, dead, replacement int32) error {
	st, err := s.node.Status(ctx)
	if err != nil {
		return err
	}
	pr, ok := st.Progress[uint64(replacement)]
	if !ok || !pr.IsLearner || pr.Match < st.HardState.GetCommit() {
		return fmt.Errorf("%w: node %d (match %d, commit %d)", ErrNotCaughtUp, replacement, pr.Match, st.HardState.GetCommit())
	}
	if err := s.node.ReplaceVoter(ctx, uint64(dead), uint64(replacement)); err != nil {
		return err
	}
	s.log.Info("voter replaced", "dead", dead, "replacement", replacement)
	return nil
}

func (s *Server) status() Status {
	cs := s.node.ConfState()
	ids := func(v []uint64) []int32 {
		out := make([]int32, 0, len(v))
		for _, id := range v {
			out = append(out, int32(id))
		}
		slices.Sort(out)
		return out
	}
	return Status{LeaderID: s.id, Term: s.node.Term(), Voters: ids(cs.GetVoters()), Learners: ids(cs.GetLearners()),
		Applied: s.node.AppliedIndex()}
}

// connSet tracks the connections in Serve so Close can end them.
type connSet struct {
	mu     sync.Mutex
	closed bool
	m      map[net.Conn]struct{}
}

func (c *connSet) add(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.m == nil {
		c.m = map[net.Conn]struct{}{}
	}
	c.m[conn] = struct{}{}
	return true
}

func (c *connSet) remove(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, conn)
}

func (c *connSet) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for conn := range c.m {
		_ = conn.Close()
	}
	clear(c.m)
}
