package raftlog

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

func TestNodeSingleVoter(t *testing.T) {
	h := newHarness(t, []uint64{1}, nil)
	h.startAll()
	h.waitLeader(5 * time.Second)
	idx, d := h.propose(regCmd(1))
	if len(d.Brokers) != 1 || d.Brokers[0].New.Epoch != int64(idx) {
		t.Fatalf("register delta %+v at index %d", d, idx)
	}
	st, err := h.member(1).node.Status(context.Background())
	if err != nil || st.RaftState.String() != "StateLeader" || st.Progress[1].Match < idx {
		t.Fatalf("status %v %v", st.RaftState, err)
	}
	stopped := h.member(1).node
	h.kill(1)
	if _, _, err := stopped.Propose(context.Background(), nil); !errors.Is(err, ErrStopped) {
		t.Fatalf("propose on a stopped node: %v", err)
	}
	if _, err := stopped.Status(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("status of a stopped node: %v", err)
	}
	m := h.start(1)
	if err := m.node.WaitApplied(context.Background(), idx); err != nil {
		t.Fatal(err)
	}
	if b, ok := m.sm.Image().Broker(1); !ok || b.Epoch != int64(idx) {
		t.Fatalf("after restart broker 1 = %+v, %v", b, ok)
	}
}

func TestNodeThreeVotersReplicateAndRestart(t *testing.T) {
	h := newHarness(t, []uint64{1, 2, 3}, func(c *Config) { c.SnapshotEntries = 10 })
	h.startAll()
	sub := h.member(2).sm.Subscribe() // a reader on one node; drained at the end
	defer sub.Close()
	leader := h.waitLeader(10 * time.Second)
	t.Logf("leader %d elected", leader)

	// A follower refuses proposals and names the leader.
	var follower uint64
	for _, id := range h.ids() {
		if id != leader {
			follower = id
			break
		}
	}
	_, _, err := ProposeCommand(context.Background(), h.member(follower).node, regCmd(9))
	var nl *NotLeaderError
	if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) || nl.Leader != leader {
		t.Fatalf("propose on follower: %v, want NotLeaderError{%d}", err, leader)
	}

	last := h.registerBrokers()
	for i := range 20 {
		idx, d := h.propose(topicCmd(i))
		if len(d.Partitions) != 2 {
			t.Fatalf("create topic %d: delta %+v", i, d)
		}
		last = idx
	}
	// A rejected command commits, is rejected identically everywhere, and
	// its rejection comes back to the proposer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader = h.waitLeader(10 * time.Second)
	idx, _, err := ProposeCommand(ctx, h.member(leader).node, topicCmd(0))
	if !errors.Is(err, meta.ErrTopicExists) || idx <= last {
		t.Fatalf("duplicate topic: index %d err %v, want ErrTopicExists", idx, err)
	}
	img := h.waitConverged(idx)
	if got := len(img.Topics()); got != 20 {
		t.Fatalf("image has %d topics, want 20", got)
	}
	applied := map[uint64]uint64{}
	for _, id := range h.ids() {
		m := h.member(id)
		applied[id] = m.node.AppliedIndex()
		if m.node.st.SnapshotIndex() == 0 {
			t.Fatalf("node %d took no snapshot (applied %d)", id, applied[id])
		}
	}
	want := meta.EncodeImage(img)

	// The subscriber saw every change in log order (3 registrations, 3
	// unfences, 20 topics), and the image they add up to.
	u, ok := sub.TryNext()
	if !ok || !u.Reset || len(u.Deltas) != 26 || !u.Image.Equal(img) {
		t.Fatalf("subscription: ok %v reset %v, %d deltas", ok, u.Reset, len(u.Deltas))
	}
	for i := 1; i < len(u.Deltas); i++ {
		if u.Deltas[i].Index <= u.Deltas[i-1].Index {
			t.Fatalf("deltas out of order at %d", i)
		}
	}

	// Whole-cluster restart: every node comes back with the same image and
	// at least its applied index, then commits again.
	for _, id := range h.ids() {
		h.kill(id)
	}
	h.startAll()
	for id, a := range applied {
		m := h.member(id)
		if err := m.node.WaitApplied(ctx, a); err != nil {
			t.Fatalf("node %d after restart: applied %d, want %d: %v", id, m.node.AppliedIndex(), a, err)
		}
		if !bytes.Equal(meta.EncodeImage(m.sm.Image()), want) {
			t.Fatalf("node %d image differs after restart", id)
		}
	}
	idx, _ = h.propose(topicCmd(100))
	if img := h.waitConverged(idx); len(img.Topics()) != 21 {
		t.Fatalf("after restart: %d topics", len(img.Topics()))
	}
}

func TestNodeLeaderKillFailover(t *testing.T) {
	h := newHarness(t, []uint64{1, 2, 3}, nil)
	h.startAll()
	old := h.waitLeader(10 * time.Second)
	idx, _ := h.propose(regCmd(1))
	h.waitConverged(idx)

	var survivor uint64
	for _, id := range h.ids() {
		if id != old {
			survivor = id
		}
	}
	changed := h.member(survivor).node.LeaderChanged()
	killed := time.Now()
	h.kill(old)
	var (
		leader uint64
		newIdx uint64
	)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		leader = h.waitLeader(10 * time.Second)
		if leader == old {
			t.Fatalf("killed node %d still leader", old)
		}
		var err error
		newIdx, _, err = ProposeCommand(ctx, h.member(leader).node, regCmd(2))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrProposalDropped) {
			t.Fatal(err)
		}
	}
	took := time.Since(killed)
	select {
	case <-changed:
	default:
		t.Fatal("LeaderChanged not closed on the survivor")
	}
	t.Logf("leader %d killed; node %d leads and committed index %d after %v (tick %v, election %d ticks)",
		old, leader, newIdx, took, DefaultConfig().TickInterval, DefaultConfig().ElectionTicks)

	// The killed node restarts from its data directory and catches up.
	h.start(old)
	img := h.waitConverged(newIdx)
	if _, ok := img.Broker(2); !ok {
		t.Fatal("broker 2 missing after failover")
	}
}

func TestNodeLearnerCatchUpAndReplaceVoter(t *testing.T) {
	h := newHarness(t, []uint64{1, 2, 3}, func(c *Config) {
		c.SnapshotEntries = 5
		c.CatchUpEntries = 0 // compact to the snapshot: a new learner needs it
	})
	h.startAll()
	leader := h.waitLeader(10 * time.Second)
	last := h.registerBrokers()
	for i := range 12 {
		last, _ = h.propose(topicCmd(i))
	}
	h.waitConverged(last)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	learner := h.start(4) // empty, not an initial voter: waits to be added
	for _, id := range []uint64{1, 2, 3} {
		if id == leader {
			continue
		}
		if err := h.member(id).node.AddLearner(ctx, 4); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("AddLearner on follower %d: %v, want ErrNotLeader", id, err)
		}
	}
	ln := h.member(leader).node
	if err := ln.AddLearner(ctx, 4); err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	if err := ln.AddLearner(ctx, 4); err != nil {
		t.Fatalf("AddLearner again: %v", err)
	}
	if err := ln.AddLearner(ctx, leader); !errors.Is(err, ErrConfChange) {
		t.Fatalf("AddLearner(voter): %v, want ErrConfChange", err)
	}
	cs := ln.ConfState()
	if !slices.Equal(cs.GetLearners(), []uint64{4}) || len(cs.GetVoters()) != 3 {
		t.Fatalf("conf state %v", cs)
	}
	h.waitConverged(ln.AppliedIndex())
	if learner.sm.Restores() == 0 {
		t.Fatal("learner caught up without a snapshot")
	}
	if _, _, err := ProposeCommand(ctx, learner.node, regCmd(4)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("propose on learner: %v", err)
	}
	last, _ = h.propose(topicCmd(50))
	h.waitConverged(last)

	// Replace a dead voter (not the leader) by the caught-up learner.
	var dead uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != leader {
			dead = id
			break
		}
	}
	h.kill(dead)
	leader = h.waitLeader(10 * time.Second)
	if err := h.member(leader).node.ReplaceVoter(ctx, dead, 4); err != nil {
		t.Fatalf("ReplaceVoter(%d, 4): %v", dead, err)
	}
	eventually(t, 10*time.Second, "leaving the joint configuration", func() bool {
		cs := h.member(leader).node.ConfState()
		return len(cs.GetVotersOutgoing()) == 0 && slices.Contains(cs.GetVoters(), 4) && !slices.Contains(cs.GetVoters(), dead)
	})
	last, _ = h.propose(topicCmd(51))
	h.waitConverged(last)
	tr := h.member(leader).node.Transport()
	tr.mu.Lock()
	_, stillSending := tr.out[dead]
	tr.mu.Unlock()
	if stillSending {
		t.Fatalf("leader still runs a sender for removed node %d", dead)
	}
	t.Logf("voters after replacement: %v", h.member(leader).node.ConfState().GetVoters())
}

func TestNodeLearnerCatchUpByLog(t *testing.T) {
	h := newHarness(t, []uint64{1, 2, 3}, nil) // no snapshot yet: the whole log is there
	h.startAll()
	last := h.registerBrokers()
	h.waitConverged(last)
	leader := h.member(h.waitLeader(10 * time.Second)).node
	learner := h.start(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.AddLearner(ctx, 4); err != nil {
		t.Fatal(err)
	}
	img := h.waitConverged(leader.AppliedIndex())
	if learner.sm.Restores() != 0 || len(img.Brokers()) != 3 {
		t.Fatalf("learner: %d restores, %d brokers", learner.sm.Restores(), len(img.Brokers()))
	}
	// The learner rebuilt the configuration from the log itself.
	if cs := learner.node.ConfState(); !slices.Equal(cs.GetVoters(), []uint64{1, 2, 3}) || !slices.Equal(cs.GetLearners(), []uint64{4}) {
		t.Fatalf("learner conf state %v", cs)
	}
}
