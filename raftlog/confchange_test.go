package raftlog

import (
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// TestReplaceDeadVoter runs the documented procedure: voter 3 dies, node 4
// joins as a learner, catches up (by snapshot), and ReplaceVoter swaps it
// in. Afterwards {1, 4} alone can commit.
func TestReplaceDeadVoter(t *testing.T) {
	c := newTestCluster(t, 3, 5)
	c.elect(1)
	c.propose(1, 0, 12)

	// Node 3 dies for good.
	if err := c.nodes[3].st.Close(); err != nil {
		t.Fatal(err)
	}
	delete(c.nodes, 3)
	c.ids = slices.DeleteFunc(c.ids, func(id uint64) bool { return id == 3 })
	c.propose(1, 12, 3) // 1 and 2 still form a quorum

	c.ids = append(c.ids, 4)
	c.dirs[4] = filepath.Join(t.TempDir(), "n4")
	c.startNode(4, false)
	leader := c.nodes[1].rn
	if err := leader.ProposeConfChange(AddLearner(4)); err != nil {
		t.Fatal(err)
	}
	c.stabilize()
	for range 3 {
		leader.Tick()
		c.stabilize()
	}
	var match uint64
	leader.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == 4 {
			match = pr.Match
		}
	})
	if commit := leader.BasicStatus().HardState.GetCommit(); match < commit {
		t.Fatalf("learner 4 at %d, leader commit %d", match, commit)
	}
	c.checkApplied(wantApplied(15), 1, 2, 4)
	if c.snapshots == 0 {
		t.Fatal("learner caught up without a snapshot")
	}

	if err := leader.ProposeConfChange(ReplaceVoter(3, 4)); err != nil {
		t.Fatal(err)
	}
	c.stabilize()
	for range 3 { // leaving the joint configuration happens on its own
		leader.Tick()
		c.stabilize()
	}
	cs := c.nodes[1].confState
	if v := slices.Sorted(slices.Values(cs.GetVoters())); !slices.Equal(v, []uint64{1, 2, 4}) || len(cs.GetVotersOutgoing()) != 0 || len(cs.GetLearners()) != 0 {
		t.Fatalf("conf state after replacement: %v", cs)
	}

	// With 2 cut off, the new voter set {1, 4} still commits.
	c.isolated[2] = true
	c.propose(1, 15, 3)
	c.checkApplied(wantApplied(18), 1, 4)

	// And the new configuration survives a whole-cluster restart.
	delete(c.isolated, 2)
	c.closeAll()
	c.startAll()
	c.elect(4)
	c.propose(4, 18, 2)
	c.checkApplied(wantApplied(20))
}
