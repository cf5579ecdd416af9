package raftlog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

// errNoChange marks a conf change that is already in effect; the proposal
// succeeds without a log entry.
var errNoChange = errors.New("raftlog: configuration already in effect")

// Propose replicates data (opaque to raft; the StateMachine's command
// encoding) and waits until this node has applied it. It returns the entry's
// log index and the StateMachine's result for it.
//
// Errors: a *NotLeaderError (errors.Is ErrNotLeader) when this node is not
// the leader, so the caller can forward to NotLeaderError.Leader;
// ErrProposalDropped when the entry will never be applied; ErrProposalUnknown
// when a snapshot made its fate unknowable here; ErrStopped; or ctx's error.
// After ctx's error the entry may still be applied. A proposal whose entry
// survives a leader change still completes with its result.
func (n *Node) Propose(ctx context.Context, data []byte) (index uint64, result any, err error) {
	id := n.nextID()
	p := &proposal{id: id, data: appendEnvelope(make([]byte, 0, envelopeHeader+len(data)), id, data), done: make(chan outcome, 1)}
	o, err := n.submit(ctx, p)
	return o.index, o.result, err
}

func (n *Node) nextID() requestID {
	return requestID{origin: n.cfg.ID, boot: n.boot, seq: n.seq.Add(1)}
}

func (n *Node) submit(ctx context.Context, p *proposal) (outcome, error) {
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	case <-n.done:
		return outcome{}, ErrStopped
	}
	select {
	case o := <-p.done:
		return o, o.err
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	case <-n.done:
		// Run failed every pending proposal before closing done.
		select {
		case o := <-p.done:
			return o, o.err
		default:
			return outcome{}, ErrStopped
		}
	}
}

// proposeConf proposes cc after check accepts the configuration current on
// the leader, and waits until it is applied here.
func (n *Node) proposeConf(ctx context.Context, cc *raftpb.ConfChangeV2, check func(*raftpb.ConfState) error) (uint64, error) {
	id := n.nextID()
	cc.Context = appendEnvelope(nil, id, nil)
	p := &proposal{id: id, cc: &confProp{cc: cc, check: check}, done: make(chan outcome, 1)}
	o, err := n.submit(ctx, p)
	return o.index, err
}

// AddLearner adds node id as a learner (a non-voting member that receives
// the log) and waits until the change is applied here. It succeeds at once
// if id already is a learner, and fails with ErrConfChange if id is a
// voter. Only the leader accepts it (*NotLeaderError otherwise). The
// learner needs an address in every node's Peers resolver.
func (n *Node) AddLearner(ctx context.Context, id uint64) error {
	_, err := n.proposeConf(ctx, AddLearner(id), func(cs *raftpb.ConfState) error {
		switch {
		case slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetVotersOutgoing(), id):
			return fmt.Errorf("%w: node %d is a voter", ErrConfChange, id)
		case slices.Contains(cs.GetLearners(), id):
			return errNoChange
		}
		return nil
	})
	return err
}

// ReplaceVoter replaces voter dead by replacement, which must be a learner
// that has caught up (its Progress.Match in Status near the leader's
// commit), in one joint-consensus change (see the package documentation).
// It waits until the change is applied here; raft then leaves the joint
// configuration on its own. Only the leader accepts it.
func (n *Node) ReplaceVoter(ctx context.Context, dead, replacement uint64) error {
	_, err := n.proposeConf(ctx, ReplaceVoter(dead, replacement), func(cs *raftpb.ConfState) error {
		switch {
		case len(cs.GetVotersOutgoing()) > 0:
			return fmt.Errorf("%w: a joint configuration is in progress", ErrConfChange)
		case !slices.Contains(cs.GetVoters(), dead):
			return fmt.Errorf("%w: node %d is not a voter", ErrConfChange, dead)
		case !slices.Contains(cs.GetLearners(), replacement):
			return fmt.Errorf("%w: node %d is not a learner", ErrConfChange, replacement)
		}
		return nil
	})
	return err
}
