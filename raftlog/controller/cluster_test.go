package controller

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func registration(id int32) Registration {
	r := reg(id)
	return Registration{NodeID: id, ClusterID: r.ClusterID, Incarnation: r.Incarnation, Addresses: r.Addresses}
}

// TestClusterFencingAndForwarding runs the controller over three real raft
// nodes: registration, unfencing by heartbeat, forwarding from a follower,
// fencing of a broker that stops heartbeating, re-registration and zombie
// rejection, then failover to a new controller and redirects.
func TestClusterFencingAndForwarding(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SessionTimeout = 1500 * time.Millisecond
	cfg.TickInterval = 50 * time.Millisecond
	cfg.PreferredLeaderInterval = 0
	c := newCluster(t, cfg)
	lead := c.leader()

	// Register: the epoch is the raft index of the RegisterBroker.
	epochs := map[int32]int64{}
	for _, id := range []int32{1, 2, 3} {
		m := c.member(id)
		e, err := m.client.Register(ctxT(t, 10*time.Second), registration(id))
		if err != nil {
			t.Fatalf("register %d: %v", id, err)
		}
		if err := m.node.WaitApplied(ctxT(t, 5*time.Second), uint64(e)); err != nil {
			t.Fatal(err)
		}
		if b, ok := m.mm.Image().Broker(id); !ok || b.Epoch != e || !b.Fenced {
			t.Fatalf("broker %d after register: %+v (epoch %d)", id, b, e)
		}
		epochs[id] = e
	}
	if !(epochs[1] < epochs[2] && epochs[2] < epochs[3]) {
		t.Fatalf("epochs %v not increasing raft indexes", epochs)
	}
	// A register for another node id than the link's is refused.
	if _, err := c.member(1).client.Register(ctxT(t, 5*time.Second), registration(2)); !errors.Is(err, ErrPeerMismatch) {
		t.Fatalf("register as another node: %v", err)
	}

	// Heartbeats unfence the brokers and keep them unfenced.
	beats := map[int32]*heartbeater{}
	for _, id := range []int32{1, 2, 3} {
		beats[id] = c.heartbeat(c.member(id), epochs[id], 100*time.Millisecond)
	}
	defer func() {
		for _, h := range beats {
			if h != nil {
				h.halt()
			}
		}
	}()
	unfenced := func(img *meta.Image, id int32) bool {
		b, ok := img.Broker(id)
		return ok && !b.Fenced
	}
	waitFor(t, 10*time.Second, "all brokers unfenced", func() bool {
		img := c.leader().mm.Image()
		return unfenced(img, 1) && unfenced(img, 2) && unfenced(img, 3)
	})

	// Forward a CreateTopic from a follower's client; the follower sees it
	// after WaitApplied.
	lead = c.leader()
	var follower *member
	for _, m := range c.running() {
		if m != lead {
			follower = m
			break
		}
	}
	create := meta.CreateTopic{Name: "orders", TopicID: topicID(9), Partitions: [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}}
	idx, err := follower.client.Propose(ctxT(t, 10*time.Second), create)
	if err != nil {
		t.Fatalf("forwarded CreateTopic: %v", err)
	}
	if err := follower.node.WaitApplied(ctxT(t, 5*time.Second), idx); err != nil {
		t.Fatal(err)
	}
	top, ok := follower.mm.Image().TopicByName("orders")
	if !ok || len(top.Partitions) != 3 || top.Partitions[2].Leader != 3 {
		t.Fatalf("follower image after WaitApplied(%d): %+v", idx, top)
	}
	// A rejected forward returns meta's sentinel.
	if _, err := follower.client.Propose(ctxT(t, 10*time.Second), create); !errors.Is(err, meta.ErrTopicExists) {
		t.Fatalf("duplicate CreateTopic: %v", err)
	}
	if _, err := follower.client.Propose(ctxT(t, 5*time.Second), meta.FenceBroker{NodeID: 1, BrokerEpoch: epochs[1]}); !errors.Is(err, ErrForbiddenCommand) {
		t.Fatalf("forwarded FenceBroker: %v", err)
	}
	// Only the controller moves leaders: a forwarded ChangePartition is refused.
	if _, err := follower.client.Propose(ctxT(t, 5*time.Second), meta.ChangePartition{TopicID: topicID(9), Partition: 0, Leader: 2,
		ISR: []int32{1, 2, 3}}); !errors.Is(err, ErrForbiddenCommand) {
		t.Fatalf("forwarded ChangePartition: %v", err)
	}
	// AlterPartition: proposed by the partition's leader over its own link,
	// applied item by item.
	m2 := c.member(2)
	alterISR(t, c, m2, epochs, 9, 1, []int32{2, 3}, nil)
	alterISR(t, c, m2, epochs, 9, 1, []int32{2, 3, 1}, nil)
	cur, _ := m2.mm.Image().Partition(topicID(9), 1)
	alter := meta.AlterPartition{ProposerID: 2, ProposerEpoch: epochs[2], Partitions: []meta.AlterPartitionItem{
		{TopicID: topicID(9), Partition: 1, LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch,
			ISR: []meta.ISRMember{{ID: 2, BrokerEpoch: epochs[2]}, {ID: 1, BrokerEpoch: epochs[1]}}},
		{TopicID: topicID(9), Partition: 0, ISR: []meta.ISRMember{{ID: 2, BrokerEpoch: epochs[2]}}}, // led by 1
	}}
	if _, _, err := c.member(1).client.AlterPartition(ctxT(t, 5*time.Second), alter); !errors.Is(err, ErrPeerMismatch) {
		t.Fatalf("AlterPartition for another node: %v", err)
	}
	idx, rejected, err := m2.client.AlterPartition(ctxT(t, 10*time.Second), alter)
	if err != nil || len(rejected) != 1 || rejected[0].Partition != 0 || !errors.Is(rejected[0].Err, meta.ErrNotPartitionLeader) {
		t.Fatalf("AlterPartition = %d, %v, %v", idx, rejected, err)
	}
	if err := m2.node.WaitApplied(ctxT(t, 5*time.Second), idx); err != nil {
		t.Fatal(err)
	}
	if got, _ := m2.mm.Image().Partition(topicID(9), 1); got.Leader != 2 || !slices.Equal(got.ISR, []int32{2, 1}) ||
		got.LeaderEpoch != cur.LeaderEpoch || got.PartitionEpoch != cur.PartitionEpoch+1 {
		t.Fatalf("partition 1 after AlterPartition: %+v (before %+v)", got, cur)
	}
	alterISR(t, c, m2, epochs, 9, 1, []int32{2, 3, 1}, nil)
	// A stale broker epoch fails the whole command.
	alter.ProposerEpoch--
	if _, _, err := m2.client.AlterPartition(ctxT(t, 10*time.Second), alter); !errors.Is(err, meta.ErrStaleBrokerEpoch) {
		t.Fatalf("AlterPartition with a stale broker epoch: %v", err)
	}
	block, _, err := follower.client.AllocateProducerIDs(ctxT(t, 10*time.Second), follower.id, epochs[follower.id])
	if err != nil || block.Count != meta.ProducerIDBlockSize || block.NodeID != follower.id {
		t.Fatalf("AllocateProducerIDs = %+v, %v", block, err)
	}

	// Broker 3 stops heartbeating: it is fenced and partition 2 (which it
	// led) gets a new leader in a bumped epoch.
	before, _ := lead.mm.Image().Partition(topicID(9), 2)
	beats[3].halt()
	beats[3] = nil
	waitFor(t, 10*time.Second, "broker 3 fenced", func() bool { return !unfenced(c.leader().mm.Image(), 3) })
	img := c.leader().mm.Image()
	after, _ := img.Partition(topicID(9), 2)
	if after.Leader != 1 || after.LeaderEpoch != before.LeaderEpoch+1 || slices.Contains(after.ISR, 3) {
		t.Fatalf("partition 2 after fencing 3: %+v (before %+v)", after, before)
	}
	for p := range int32(3) {
		pt, _ := img.Partition(topicID(9), p)
		if slices.Contains(pt.ISR, 3) || pt.Leader == 3 {
			t.Fatalf("partition %d still has broker 3: %+v", p, pt)
		}
	}
	if !unfenced(img, 1) || !unfenced(img, 2) {
		t.Fatal("heartbeating brokers were fenced")
	}

	// Broker 3 "restarts": a new registration, a new epoch; the old epoch
	// is a zombie.
	m3 := c.member(3)
	e3, err := m3.client.Register(ctxT(t, 10*time.Second), registration(3))
	if err != nil || e3 <= epochs[3] {
		t.Fatalf("re-register 3 = %d, %v (old epoch %d)", e3, err, epochs[3])
	}
	reply, err := m3.client.Heartbeat(ctxT(t, 5*time.Second), Heartbeat{NodeID: 3, BrokerEpoch: epochs[3], MetadataOffset: m3.node.AppliedIndex()})
	if !errors.Is(err, ErrStaleBrokerEpoch) || reply.ErrorCode != wire.CodeStaleBrokerEpoch || !reply.Fenced {
		t.Fatalf("zombie heartbeat = %+v, %v", reply, err)
	}
	epochs[3] = e3
	beats[3] = c.heartbeat(m3, e3, 100*time.Millisecond)
	waitFor(t, 10*time.Second, "re-registered broker 3 unfenced", func() bool { return unfenced(c.leader().mm.Image(), 3) })

	// Failover: the controller's broker stops and its node dies. The new
	// controller gives everyone a fresh session, then fences the dead one.
	old := c.leader()
	beats[old.id].halt()
	beats[old.id] = nil
	c.kill(old.id)
	lead = c.leader()
	if lead.id == old.id {
		t.Fatal("leader did not change")
	}
	waitFor(t, 10*time.Second, "dead controller's broker fenced", func() bool { return !unfenced(lead.mm.Image(), old.id) })
	for _, m := range c.running() {
		if !unfenced(lead.mm.Image(), m.id) {
			t.Fatalf("live broker %d fenced after failover", m.id)
		}
	}

	// NOT_CONTROLLER redirect: a client pointed at the follower ends up at
	// the new controller.
	var other *member
	for _, m := range c.running() {
		if m != lead {
			other = m
		}
	}
	redirected := NewClient(c.dialer(other.id), func() int32 { return other.id }, ClientConfig{})
	defer redirected.Close()
	st, err := redirected.Status(ctxT(t, 10*time.Second))
	if err != nil || st.LeaderID != lead.id || !slices.Equal(st.Voters, []int32{1, 2, 3}) || st.Applied == 0 {
		t.Fatalf("status via redirect = %+v, %v (leader %d)", st, err, lead.id)
	}
	// Forwarding from the follower still lands on the new leader.
	idx, err = other.client.Propose(ctxT(t, 10*time.Second), meta.DeleteTopic{TopicID: topicID(9)})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.node.WaitApplied(ctxT(t, 5*time.Second), idx); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.mm.Image().TopicByName("orders"); ok {
		t.Fatal("topic still present after forwarded DeleteTopic")
	}
	// ReplaceVoter with a replacement that is no learner is refused.
	if err := other.client.ReplaceVoter(ctxT(t, 5*time.Second), old.id, 7); !errors.Is(err, ErrNotCaughtUp) {
		t.Fatalf("ReplaceVoter: %v", err)
	}
	// A direct call to a follower's server answers NOT_CONTROLLER naming
	// the leader.
	if ok, hint := other.srv.active(); ok || hint != lead.id {
		t.Fatalf("follower active() = %v, %d; want false, %d", ok, hint, lead.id)
	}
}

// TestClusterControlledShutdown moves leadership away from a broker over
// RPC and checks that nothing is left for it to lead.
func TestClusterControlledShutdown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SessionTimeout = 3 * time.Second
	cfg.TickInterval = 50 * time.Millisecond
	cfg.PreferredLeaderInterval = 100 * time.Millisecond
	c := newCluster(t, cfg)
	c.leader()
	epochs := map[int32]int64{}
	var beats []*heartbeater
	defer func() {
		for _, h := range beats {
			h.halt()
		}
	}()
	for _, id := range []int32{1, 2, 3} {
		m := c.member(id)
		e, err := m.client.Register(ctxT(t, 10*time.Second), registration(id))
		if err != nil {
			t.Fatal(err)
		}
		epochs[id] = e
		beats = append(beats, c.heartbeat(m, e, 100*time.Millisecond))
	}
	waitFor(t, 10*time.Second, "all unfenced", func() bool {
		for _, b := range c.leader().mm.Image().Brokers() {
			if b.Fenced {
				return false
			}
		}
		return len(c.leader().mm.Image().Brokers()) == 3
	})
	m1 := c.member(1)
	// A broker outside the raft configuration registers and becomes a
	// learner.
	c4 := NewClient(c.dialer(4), func() int32 { return int32(m1.node.LeaderID()) }, ClientConfig{})
	defer c4.Close()
	if _, err := c4.Register(ctxT(t, 10*time.Second), registration(4)); err != nil {
		t.Fatalf("register 4: %v", err)
	}
	if st, err := c4.Status(ctxT(t, 10*time.Second)); err != nil || !slices.Equal(st.Learners, []int32{4}) {
		t.Fatalf("status after registering 4: %+v, %v", st, err)
	}
	if _, err := m1.client.Propose(ctxT(t, 10*time.Second), meta.CreateTopic{Name: "logs", TopicID: topicID(5),
		Partitions: [][]int32{{1, 2, 3}, {1, 3, 2}, {2, 1, 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := m1.client.ControlledShutdown(ctxT(t, 5*time.Second), 1, epochs[1]-1); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("controlled shutdown with a stale epoch: %v", err)
	}
	if err := m1.client.ControlledShutdown(ctxT(t, 10*time.Second), 1, epochs[1]); err != nil {
		t.Fatal(err)
	}
	lead := c.leader()
	img := lead.mm.Image()
	top, _ := img.TopicByName("logs")
	for p, pt := range top.Partitions {
		if pt.Leader == 1 || slices.Contains(pt.ISR, 1) {
			t.Fatalf("partition %d after controlled shutdown: %+v", p, pt)
		}
	}
	// KIP-841: the leader of logs/2 may not take the shutting-down broker
	// back into its ISR, though meta.Apply alone would allow it.
	alterISR(t, c, c.member(2), epochs, 5, 2, []int32{2, 1, 3}, meta.ErrIneligibleReplica)
	if pt, _ := c.leader().mm.Image().Partition(topicID(5), 2); slices.Contains(pt.ISR, 1) {
		t.Fatalf("logs/2 took broker 1 back: %+v", pt)
	}
	// Heartbeats still arrive (the broker is draining) but with the
	// preferred-leader pass running, leadership must not come back.
	idx := img.Index()
	waitFor(t, 10*time.Second, "a few more ticks", func() bool {
		st, err := m1.client.Status(ctxT(t, 5*time.Second))
		return err == nil && st.Applied >= idx && lead.node.AppliedIndex() >= idx
	})
	reply, err := m1.client.Heartbeat(ctxT(t, 5*time.Second), Heartbeat{NodeID: 1, BrokerEpoch: epochs[1], WantFence: true, MetadataOffset: m1.node.AppliedIndex()})
	if err != nil || !reply.ShouldShutdown {
		t.Fatalf("heartbeat in shutdown = %+v, %v", reply, err)
	}
	top, _ = c.leader().mm.Image().TopicByName("logs")
	for p, pt := range top.Partitions {
		if pt.Leader == 1 {
			t.Fatalf("partition %d led by the shutting-down broker again", p)
		}
	}

	// A frame above MaxMessageSize, and then a malformed one, make the
	// server close the connection without answering.
	for _, frame := range [][]byte{{0xFF, 0xFF, 0xFF, 0xFF}, {0, 0, 0, 2, 9, 9}} {
		conn, err := c.dialer(1)(ctxT(t, 5*time.Second), lead.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("after frame %x: read %d, %v; want EOF", frame, n, err)
		}
		_ = conn.Close()
	}
}

// alterISR has leader m propose topic i's partition p's ISR (with the
// members' broker epochs) at the epochs of its own image, once that has
// caught up with the controller's, and checks the item's outcome: applied
// when want is nil, else refused with want. It returns once m's image holds
// the command.
func alterISR(t *testing.T, c *cluster, m *member, epochs map[int32]int64, i byte, p int32, isr []int32, want error) {
	t.Helper()
	if err := m.node.WaitApplied(ctxT(t, 5*time.Second), c.leader().node.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	cur, ok := m.mm.Image().Partition(topicID(i), p)
	if !ok {
		t.Fatalf("node %d has no partition %d/%d", m.id, i, p)
	}
	it := meta.AlterPartitionItem{TopicID: topicID(i), Partition: p, LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch}
	for _, id := range isr {
		it.ISR = append(it.ISR, meta.ISRMember{ID: id, BrokerEpoch: epochs[id]})
	}
	idx, rejected, err := m.client.AlterPartition(ctxT(t, 10*time.Second), meta.AlterPartition{ProposerID: m.id,
		ProposerEpoch: epochs[m.id], Partitions: []meta.AlterPartitionItem{it}})
	switch {
	case err != nil:
		t.Fatalf("AlterPartition %d/%d %v: %v", i, p, isr, err)
	case want == nil && len(rejected) != 0:
		t.Fatalf("AlterPartition %d/%d %v rejected: %v", i, p, isr, rejected[0].Err)
	case want != nil && (len(rejected) != 1 || !errors.Is(rejected[0].Err, want)):
		t.Fatalf("AlterPartition %d/%d %v rejected %v, want %v", i, p, isr, rejected, want)
	}
	if err := m.node.WaitApplied(ctxT(t, 5*time.Second), idx); err != nil {
		t.Fatal(err)
	}
	got, _ := m.mm.Image().Partition(topicID(i), p)
	if want == nil && (got.Leader != cur.Leader || got.LeaderEpoch != cur.LeaderEpoch || len(got.ISR) != len(isr)) {
		t.Fatalf("%d/%d after AlterPartition %v: %+v (before %+v)", i, p, isr, got, cur)
	}
}
