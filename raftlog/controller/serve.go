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

// ErrPeerMismatch reports a Register, Heartbeat or ControlledShutdown for a
// node id other than the one the link authenticated (wire code
// CLUSTER_AUTHORIZATION_FAILED).
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
	case kindPropose:
		resp.index, resp.producerIDs, err = s.forward(ctx, req.command)
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

func (s *Server) forward(ctx context.Context, data []byte) (uint64, *meta.ProducerIDBlock, error) {
	cmd, err := meta.DecodeCommand(data)
	if err != nil {
		return 0, nil, err
	}
	switch cmd.(type) {
	case meta.RegisterBroker, meta.FenceBroker, meta.UnfenceBroker:
		return 0, nil, fmt.Errorf("%w: %v", ErrForbiddenCommand, cmd.Type())
	}
	idx, delta, err := raftlog.ProposeCommand(ctx, s.node, cmd)
	return idx, delta.ProducerIDs, err
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
