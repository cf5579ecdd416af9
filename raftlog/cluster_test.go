package raftlog

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A deterministic in-process raft cluster: RawNodes on real Storage, messages
// passed through a queue by the test loop, no network and no clock.

type testNode struct {
	id        uint64
	dir       string
	st        *Storage
	rn        *raft.RawNode
	applied   []string // the state machine: data of applied normal entries
	appliedAt uint64
	confState *raftpb.ConfState
}

type testCluster struct {
	t         *testing.T
	ids       []uint64
	nodes     map[uint64]*testNode
	dirs      map[uint64]string
	queue     []*raftpb.Message
	isolated  map[uint64]bool
	snapEvery uint64
	snapshots int // snapshots received through Ready.Snapshot
}

func newTestCluster(t *testing.T, n int, snapEvery uint64) *testCluster {
	c := &testCluster{t: t, nodes: map[uint64]*testNode{}, dirs: map[uint64]string{}, isolated: map[uint64]bool{}, snapEvery: snapEvery}
	root := t.TempDir()
	for i := 1; i <= n; i++ {
		id := uint64(i)
		c.ids = append(c.ids, id)
		c.dirs[id] = filepath.Join(root, fmt.Sprintf("n%d", id))
	}
	c.startAll()
	t.Cleanup(c.closeAll)
	return c
}

func (c *testCluster) startAll() {
	for _, id := range c.ids {
		c.start(id)
	}
	c.stabilize()
}

func (c *testCluster) start(id uint64) { c.startNode(id, true) }

// startNode opens node id; a node with an empty log bootstraps the initial
// voters when bootstrap is set, and otherwise waits to be added by a conf
// change and fed by the leader.
func (c *testCluster) startNode(id uint64, bootstrap bool) {
	t := c.t
	t.Helper()
	st, err := OpenStorage(c.dirs[id], StorageConfig{SnapshotEntries: c.snapEvery})
	if err != nil {
		t.Fatalf("node %d: OpenStorage: %v", id, err)
	}
	n := &testNode{id: id, dir: c.dirs[id], st: st, confState: &raftpb.ConfState{}}
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !raft.IsEmptySnap(snap) {
		n.restore(t, snap)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st, Applied: n.appliedAt,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: RaftLogger(nil),
	})
	if err != nil {
		t.Fatalf("node %d: NewRawNode: %v", id, err)
	}
	if last, _ := st.LastIndex(); last == 0 && bootstrap {
		var peers []raft.Peer
		for _, p := range c.ids {
			peers = append(peers, raft.Peer{ID: p})
		}
		if err := rn.Bootstrap(peers); err != nil {
			t.Fatalf("node %d: Bootstrap: %v", id, err)
		}
	}
	n.rn = rn
	c.nodes[id] = n
}

func (n *testNode) restore(t *testing.T, snap *raftpb.Snapshot) {
	t.Helper()
	n.applied = nil
	if err := json.Unmarshal(snap.GetData(), &n.applied); err != nil {
		t.Fatalf("node %d: snapshot data: %v", n.id, err)
	}
	n.appliedAt = snap.GetMetadata().GetIndex()
	n.confState = proto.Clone(snap.GetMetadata().GetConfState()).(*raftpb.ConfState)
}

func (c *testCluster) closeAll() {
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			if err := n.st.Close(); err != nil {
				c.t.Errorf("node %d: Close: %v", id, err)
			}
			delete(c.nodes, id)
		}
	}
	c.queue = nil
}

// process handles every pending Ready of node n, honouring the contract:
// persist, then queue messages, then apply, then Advance.
func (c *testCluster) process(n *testNode) bool {
	t := c.t
	t.Helper()
	did := false
	for n.rn.HasReady() {
		did = true
		rd := n.rn.Ready()
		if err := n.st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			t.Fatalf("node %d: Save: %v", n.id, err)
		}
		for _, m := range rd.Messages {
			if c.isolated[m.GetTo()] || c.isolated[m.GetFrom()] {
				n.rn.ReportUnreachable(m.GetTo())
				if m.GetType() == raftpb.MessageType_MsgSnap {
					n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
				}
				continue
			}
			c.queue = append(c.queue, m)
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			n.restore(t, rd.Snapshot)
			c.snapshots++
		}
		for _, e := range rd.CommittedEntries {
			switch e.GetType() {
			case raftpb.EntryType_EntryNormal:
				if len(e.GetData()) > 0 {
					n.applied = append(n.applied, string(e.GetData()))
				}
			case raftpb.EntryType_EntryConfChange:
				var cc raftpb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					t.Fatal(err)
				}
				n.confState = n.rn.ApplyConfChange(&cc)
			case raftpb.EntryType_EntryConfChangeV2:
				var cc raftpb.ConfChangeV2
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					t.Fatal(err)
				}
				n.confState = n.rn.ApplyConfChange(&cc)
			}
			n.appliedAt = e.GetIndex()
		}
		if len(rd.CommittedEntries) > 0 && n.st.ShouldSnapshot(n.appliedAt) {
			data, err := json.Marshal(n.applied)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.st.CreateSnapshot(n.appliedAt, n.confState, data); err != nil {
				t.Fatalf("node %d: CreateSnapshot(%d): %v", n.id, n.appliedAt, err)
			}
			if err := n.st.Compact(n.appliedAt); err != nil {
				t.Fatalf("node %d: Compact: %v", n.id, err)
			}
		}
		n.rn.Advance(rd)
	}
	return did
}

// stabilize runs Ready processing and message delivery until quiet.
func (c *testCluster) stabilize() {
	t := c.t
	t.Helper()
	for round := 0; ; round++ {
		if round > 10_000 {
			t.Fatal("cluster did not stabilize")
		}
		did := false
		for _, id := range c.ids {
			if n := c.nodes[id]; n != nil && c.process(n) {
				did = true
			}
		}
		q := c.queue
		c.queue = nil
		for _, m := range q {
			did = true
			to := c.nodes[m.GetTo()]
			if to == nil {
				continue
			}
			if err := to.rn.Step(m); err != nil {
				t.Fatalf("node %d: Step(%v): %v", to.id, m.GetType(), err)
			}
			if m.GetType() == raftpb.MessageType_MsgSnap {
				c.nodes[m.GetFrom()].rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
			}
		}
		if !did {
			return
		}
	}
}

func (c *testCluster) elect(id uint64) {
	c.t.Helper()
	if err := c.nodes[id].rn.Campaign(); err != nil {
		c.t.Fatal(err)
	}
	c.stabilize()
	if st := c.nodes[id].rn.BasicStatus(); st.RaftState != raft.StateLeader {
		c.t.Fatalf("node %d is %v after campaign, want leader", id, st.RaftState)
	}
}

func (c *testCluster) propose(leader uint64, from, n int) {
	c.t.Helper()
	for i := from; i < from+n; i++ {
		if err := c.nodes[leader].rn.Propose([]byte(fmt.Sprintf("cmd-%04d", i))); err != nil {
			c.t.Fatalf("Propose: %v", err)
		}
		c.stabilize()
	}
}

func wantApplied(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("cmd-%04d", i))
	}
	return out
}

func (c *testCluster) checkApplied(want []string, ids ...uint64) {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	for _, id := range ids {
		if got := c.nodes[id].applied; !slices.Equal(got, want) {
			c.t.Fatalf("node %d applied %d commands %v, want %d", id, len(got), tail(got), len(want))
		}
	}
}

func tail(s []string) []string {
	if len(s) > 3 {
		return s[len(s)-3:]
	}
	return s
}

type logEntry struct {
	Index, Term uint64
	Type        raftpb.EntryType
	Data        string
}

// storedLog returns the entries Storage holds, with its HardState.
func storedLog(t *testing.T, st *Storage) ([]logEntry, [3]uint64) {
	t.Helper()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	var out []logEntry
	if last >= first {
		ents, err := st.Entries(first, last+1, ^uint64(0))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, logEntry{e.GetIndex(), e.GetTerm(), e.GetType(), string(e.GetData())})
		}
	}
	hs, _, _ := st.InitialState()
	return out, [3]uint64{hs.GetTerm(), hs.GetVote(), hs.GetCommit()}
}

func TestSingleVoterRestart(t *testing.T) {
	c := newTestCluster(t, 1, 8)
	c.elect(1)
	c.propose(1, 0, 30)
	c.checkApplied(wantApplied(30))
	if c.nodes[1].st.SnapshotIndex() == 0 {
		t.Fatal("no snapshot taken")
	}
	log1, hs1 := storedLog(t, c.nodes[1].st)

	c.closeAll()
	c.startAll()
	log2, hs2 := storedLog(t, c.nodes[1].st)
	if !slices.Equal(log1, log2) || hs1 != hs2 {
		t.Fatalf("log after restart differs:\n%v %v\n%v %v", log1, hs1, log2, hs2)
	}
	c.checkApplied(wantApplied(30))
	c.elect(1)
	c.propose(1, 30, 5)
	c.checkApplied(wantApplied(35))
	if got := c.nodes[1].st.WALSegments(); got != 1 {
		t.Fatalf("wal segments = %d, want 1 after checkpoints", got)
	}
}

func TestThreeVotersWholeClusterRestart(t *testing.T) {
	c := newTestCluster(t, 3, 10)
	c.elect(1)
	c.propose(1, 0, 25)
	c.checkApplied(wantApplied(25))
	before := map[uint64][]logEntry{}
	hsBefore := map[uint64][3]uint64{}
	for _, id := range c.ids {
		before[id], hsBefore[id] = storedLog(t, c.nodes[id].st)
	}

	c.closeAll()
	c.startAll()
	for _, id := range c.ids {
		got, hs := storedLog(t, c.nodes[id].st)
		if !slices.Equal(got, before[id]) || hs != hsBefore[id] {
			t.Fatalf("node %d: log after restart differs", id)
		}
	}
	// Every node re-applies its committed entries from its snapshot on.
	c.checkApplied(wantApplied(25))
	c.elect(2)
	c.propose(2, 25, 5)
	c.checkApplied(wantApplied(30))
}

func TestLaggingFollowerGetsSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, 5)
	c.elect(1)
	c.propose(1, 0, 3)
	c.isolated[3] = true
	c.propose(1, 3, 20)
	c.checkApplied(wantApplied(23), 1, 2)
	c.checkApplied(wantApplied(3), 3)
	if first, _ := c.nodes[1].st.FirstIndex(); first <= 5 {
		t.Fatalf("leader first index %d: log not compacted", first)
	}

	delete(c.isolated, 3)
	for range 3 {
		c.nodes[1].rn.Tick() // heartbeats let the leader find node 3 again
		c.stabilize()
	}
	if c.snapshots == 0 {
		t.Fatal("node 3 caught up without a snapshot")
	}
	c.checkApplied(wantApplied(23))

	// Node 3 restarts from the snapshot it received plus its WAL.
	c.closeAll()
	c.startAll()
	c.checkApplied(wantApplied(23))
	c.elect(3)
	c.propose(3, 23, 2)
	c.checkApplied(wantApplied(25))
}
