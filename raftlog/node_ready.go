package raftlog

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// handleReady honours raft's Ready contract (see the package doc):
// persist, then send, then apply, then snapshot, then Advance.
func (n *Node) handleReady(rd raft.Ready) error {
	if hs := rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
		n.term.Store(hs.GetTerm())
	}
	if ss := rd.SoftState; ss != nil {
		n.state.Store(uint64(ss.RaftState))
		if ss.Lead != n.leader.Load() {
			n.log.Info("raft leader changed", "leader", ss.Lead, "term", n.term.Load(), "state", ss.RaftState)
		}
		n.setLeader(ss.Lead)
	}

	// 1. Durable before anything depends on it: a vote or an acknowledged
	// append sent before the fsync could be forgotten by a crash.
	if err := n.st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return fmt.Errorf("raftlog: persist ready: %w", err)
	}
	if len(n.track.byID) > 0 {
		for _, e := range rd.Entries {
			if id, ok := entryRequest(e); ok && id.origin == n.cfg.ID && id.boot == n.boot {
				n.track.appended(id, e.GetIndex())
			}
		}
	}
	n.track.endReady()

	// 2. Messages may go now.
	n.tr.Send(rd.Messages)

	// 3. Apply: a received snapshot first, then committed entries in order.
	before := n.appliedIdx
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.restore(rd.Snapshot); err != nil {
			return err
		}
	}
	for _, e := range rd.CommittedEntries {
		if e.GetIndex() <= n.appliedIdx {
			continue // covered by the snapshot just restored
		}
		if e.GetIndex() != n.appliedIdx+1 {
			return fmt.Errorf("raftlog: committed entry %d after applied index %d", e.GetIndex(), n.appliedIdx)
		}
		n.apply(e)
	}
	if n.appliedIdx != before {
		n.setApplied(n.appliedIdx)
		// 4. Snapshot policy.
		n.maybeSnapshot(n.confChanged)
		n.confChanged = false
	}

	// 5. Tell raft this Ready is done.
	n.rn.Advance(rd)
	return nil
}

// entryRequest extracts the request id of a log entry a Node proposed.
func entryRequest(e *raftpb.Entry) (requestID, bool) {
	switch e.GetType() {
	case raftpb.EntryNormal:
		id, _, err := parseEnvelope(e.GetData())
		return id, err == nil
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if proto.Unmarshal(e.GetData(), &cc) != nil {
			return requestID{}, false
		}
		id, _, err := parseEnvelope(cc.GetContext())
		return id, err == nil
	}
	return requestID{}, false
}

func (n *Node) restore(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if err := n.sm.Restore(snap.GetData(), md.GetIndex()); err != nil {
		return fmt.Errorf("raftlog: restore snapshot %d: %w", md.GetIndex(), err)
	}
	n.appliedIdx = md.GetIndex()
	n.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	n.conf.Store(proto.Clone(n.confState).(*raftpb.ConfState))
	n.track.restored(md.GetIndex())
	n.log.Info("raft snapshot restored", "index", md.GetIndex(), "term", md.GetTerm(),
		"voters", n.confState.GetVoters(), "learners", n.confState.GetLearners())
	return nil
}

func (n *Node) apply(e *raftpb.Entry) {
	idx := e.GetIndex()
	n.appliedIdx = idx
	switch e.GetType() {
	case raftpb.EntryNormal:
		if len(e.GetData()) == 0 {
			n.track.applied(idx, requestID{}, false, nil, nil) // a new leader's empty entry
			return
		}
		id, data, err := parseEnvelope(e.GetData())
		if err != nil {
			// Every node skips it alike; it cannot have come from a Node.
			n.log.Error("raft entry skipped", "index", idx, "err", err)
			n.track.applied(idx, requestID{}, false, nil, nil)
			return
		}
		result := n.sm.Apply(idx, data)
		n.track.applied(idx, id, true, result, nil)
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			n.log.Error("raft conf change skipped", "index", idx, "err", err)
			n.track.applied(idx, requestID{}, false, nil, nil)
			return
		}
		cs, err := n.applyConfChange(&cc)
		n.track.applied(idx, requestID{}, false, cs, err)
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			n.log.Error("raft conf change skipped", "index", idx, "err", err)
			n.track.applied(idx, requestID{}, false, nil, nil)
			return
		}
		cs, err := n.applyConfChange(&cc)
		id, _, perr := parseEnvelope(cc.GetContext())
		n.track.applied(idx, id, perr == nil, cs, err)
	}
}

// applyConfChange applies a committed conf change to raft. raft panics on a
// change that is invalid for the current configuration (before changing
// anything); such a change is skipped instead, identically on every node,
// as raft allows the application to reject conf changes.
func (n *Node) applyConfChange(cc raftpb.ConfChangeI) (cs *raftpb.ConfState, err error) {
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %v", ErrConfChange, r)
			}
		}()
		cs = n.rn.ApplyConfChange(cc)
	}()
	if err != nil {
		n.log.Error("raft conf change rejected", "change", cc.AsV2().String(), "err", err)
		return nil, err
	}
	for id := range members(n.confState) {
		if _, ok := members(cs)[id]; !ok && id != n.cfg.ID {
			n.tr.RemovePeer(id) // raft sends it nothing more
		}
	}
	n.confState = cs
	n.confChanged = true
	n.conf.Store(proto.Clone(cs).(*raftpb.ConfState))
	n.log.Info("raft configuration changed", "voters", cs.GetVoters(), "learners", cs.GetLearners(),
		"voters_outgoing", cs.GetVotersOutgoing())
	return proto.Clone(cs).(*raftpb.ConfState), nil
}

// maybeSnapshot takes a snapshot when the policy calls for one, or when
// confChanged and a snapshot exists, and releases the log before it,
// keeping CatchUpEntries in memory. A failed snapshot is logged and retried
// at the next applied entry: the WAL still holds everything.
//
// The snapshot after a conf change matters: raft sends a peer whose log it
// cannot serve the Storage's latest snapshot, and a learner ignores a
// snapshot whose ConfState does not list it. So once the log has been
// compacted, the snapshot must always include the latest membership.
func (n *Node) maybeSnapshot(confChanged bool) {
	force := confChanged && n.st.SnapshotIndex() > 0 && n.st.SnapshotIndex() < n.appliedIdx
	if !force && !n.st.ShouldSnapshot(n.appliedIdx) {
		return
	}
	data, err := n.sm.Snapshot()
	if err != nil {
		n.log.Error("state machine snapshot failed", "index", n.appliedIdx, "err", err)
		return
	}
	if _, err := n.st.CreateSnapshot(n.appliedIdx, n.confState, data); err != nil {
		if !errors.Is(err, raft.ErrSnapOutOfDate) {
			n.log.Error("raft snapshot failed", "index", n.appliedIdx, "err", err)
		}
		return
	}
	n.log.Debug("raft snapshot taken", "index", n.appliedIdx, "bytes", len(data))
	if n.appliedIdx <= n.cfg.CatchUpEntries {
		return
	}
	if err := n.st.Compact(n.appliedIdx - n.cfg.CatchUpEntries); err != nil && !errors.Is(err, raft.ErrCompacted) {
		n.log.Error("raft log compaction failed", "index", n.appliedIdx-n.cfg.CatchUpEntries, "err", err)
	}
}

// members returns every node id a configuration lists.
func members(cs *raftpb.ConfState) map[uint64]struct{} {
	m := map[uint64]struct{}{}
	for _, l := range [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext()} {
		for _, id := range l {
			m[id] = struct{}{}
		}
	}
	return m
}
