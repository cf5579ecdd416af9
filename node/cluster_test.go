package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batchtest"
	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// startCluster3 starts brokers 1, 2, 3 and waits until all are ready.
func startCluster3(t *testing.T) *testCluster {
	c := newTestCluster(t, 3)
	for id := int32(1); id <= 3; id++ {
		c.start(id)
	}
	c.allReady(30 * time.Second)
	return c
}

func (c *testCluster) createTopic(n *Node, name string, partitions int32, rf int16) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.admin(n).CreateTopic(ctx, partitions, rf, nil, name)
	if err != nil || resp.Err != nil {
		c.t.Fatalf("create %s: %v %v", name, err, resp.Err)
	}
	// Every running node has applied it.
	c.eventually(10*time.Second, "topic "+name+" everywhere", func() bool {
		for _, n := range c.running() {
			if n.registry().get(name) == nil {
				return false
			}
		}
		return true
	})
}

// sameMetadata waits until every running node answers the same Metadata for topic.
func (c *testCluster) sameMetadata(topic string, d time.Duration) string {
	c.t.Helper()
	var last []string
	c.eventually(d, "identical metadata for "+topic, func() bool {
		last = last[:0]
		for _, n := range c.running() {
			last = append(last, partitionSummary(metadataOf(c.t, n), topic))
		}
		for _, s := range last {
			if s != last[0] {
				return false
			}
		}
		return true
	})
	return last[0]
}

func produceTo(t *testing.T, seed *Node, topic string, partition int32, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed.Addrs().ClientPlain), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("produce %s-%d: %v", topic, partition, err)
	}
}

func consumeCluster(t *testing.T, seed *Node, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed.Addrs().ClientPlain), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

func TestClusterFormationAndCreateTopics(t *testing.T) {
	c := startCluster3(t)
	n1, n3 := c.node(1), c.node(3)
	for _, n := range c.running() {
		st := n.ClusterStatus()
		if !slices.Equal(st.Voters, []int32{1, 2, 3}) || st.ControllerID < 1 || st.ClusterID == "" {
			t.Fatalf("node %d status: %+v", n.cfg.NodeID, st)
		}
		if st.ClusterID != n1.ClusterStatus().ClusterID || n.ClusterID() != st.ClusterID {
			t.Fatalf("cluster ids differ: %q %q %q", st.ClusterID, n.ClusterID(), n1.ClusterStatus().ClusterID)
		}
	}
	c.createTopic(n1, "orders", 6, 3)
	summary := c.sameMetadata("orders", 10*time.Second)
	t.Logf("metadata: %s", summary)

	resp := metadataOf(t, n3)
	if len(resp.Brokers) != 3 {
		t.Fatalf("brokers %+v", resp.Brokers)
	}
	leaders := map[int32]int{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if len(p.Replicas) != 3 || len(p.ISR) != 3 || p.ErrorCode != 0 {
				t.Fatalf("partition %+v", p)
			}
			leaders[p.Leader]++
		}
	}
	if leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("leaders not spread evenly: %v", leaders)
	}
	if resp.ControllerID != int32(n1.raft.LeaderID()) {
		t.Fatalf("controller id %d, raft leader %d", resp.ControllerID, n1.raft.LeaderID())
	}

	// Produce to every partition through a client seeded with one broker: requests reach the leaders.
	for p := int32(0); p < 6; p++ {
		produceTo(t, c.node(2), "orders", p, string(rune('a'+p)))
	}
	if got := consumeCluster(t, n3, "orders", 6); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Fatalf("consumed %v", got)
	}

	// /v1/cluster from the image.
	hr, err := http.Get("http://" + n3.Addrs().HTTP + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	var st ClusterStatus
	if err := json.NewDecoder(hr.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Topics != 1 || st.Partitions != 6 || len(st.Brokers) != 3 || len(st.Offline) != 0 ||
		st.LeadersPerBroker[1] != 2 || st.NodeID != 3 || st.Brokers[1].Leaders != 2 || st.Brokers[1].Client == "" {
		t.Fatalf("/v1/cluster: %+v", st)
	}
	rr, err := http.Get("http://" + n3.Addrs().HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	rr.Body.Close()
	if rr.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d", rr.StatusCode)
	}
}

func TestClusterLeaderAndControllerFailover(t *testing.T) {
	c := startCluster3(t)
	c.createTopic(c.node(1), "f", 3, 3)
	c.sameMetadata("f", 10*time.Second)

	// A partition led by a broker that is not the controller.
	ctrl := int32(c.node(1).raft.LeaderID())
	var victim, part int32 = -1, -1
	for p := int32(0); p < 3 && victim < 0; p++ {
		st, _ := imagePartition(c.node(1), "f", p)
		if st.Leader != ctrl {
			victim, part = st.Leader, p
		}
	}
	old, _ := imagePartition(c.node(1), "f", part)
	start := time.Now()
	c.kill(victim)
	t.Logf("killed partition leader %d (controller %d)", victim, ctrl)
	c.eventually(c.node(ctrl).cfg.SessionTimeout+10*time.Second, "a new leader for the victim's partition", func() bool {
		for _, n := range c.running() {
			st, ok := imagePartition(n, "f", part)
			if !ok || st.Leader == victim || st.Leader < 0 || st.LeaderEpoch <= old.LeaderEpoch {
				return false
			}
			// This node's Metadata must list topic "f" with the partition,
			// led by the new leader and showing the victim offline.
			resp := metadataOf(t, n)
			found := false
			for _, tp := range resp.Topics {
				if tp.Topic == nil || *tp.Topic != "f" {
					continue
				}
				for _, p := range tp.Partitions {
					if p.Partition != part {
						continue
					}
					found = true
					if p.Leader != st.Leader || !slices.Contains(p.OfflineReplicas, victim) {
						return false
					}
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	now, _ := imagePartition(c.node(ctrl), "f", part)
	t.Logf("partition leader %d killed: leader %d epoch %d -> %d after %v (isr %v)", victim, now.Leader,
		old.LeaderEpoch, now.LeaderEpoch, time.Since(start), now.ISR)
	if !slices.Contains(old.ISR, now.Leader) {
		t.Fatalf("new leader %d not from the ISR %v", now.Leader, old.ISR)
	}
	produceTo(t, c.node(ctrl), "f", part, "after-failover")

	// The victim comes back from its data dir and rejoins.
	start = time.Now()
	c.start(victim)
	c.allReady(30 * time.Second)
	t.Logf("node %d restarted and ready after %v", victim, time.Since(start))

	// Kill the controller: a new one is elected and commits.
	ctrl = int32(c.node(victim).raft.LeaderID())
	var survivor *Node
	for _, n := range c.running() {
		if n.cfg.NodeID != ctrl {
			survivor = n
		}
	}
	start = time.Now()
	c.kill(ctrl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.admin(survivor).CreateTopic(ctx, 2, 2, nil, "after-controller-death")
	if err != nil || resp.Err != nil {
		t.Fatalf("create after controller death: %v %v", err, resp.Err)
	}
	t.Logf("controller %d killed: CreateTopics committed by controller %d after %v", ctrl,
		survivor.raft.LeaderID(), time.Since(start))
	if survivor.raft.LeaderID() == uint64(ctrl) {
		t.Fatalf("raft leader still the killed node %d", ctrl)
	}
	c.eventually(10*time.Second, "survivors apply the new topic", func() bool {
		for _, n := range c.running() {
			if n.registry().get("after-controller-death") == nil {
				return false
			}
		}
		return true
	})
}

func TestClusterControlledShutdown(t *testing.T) {
	c := startCluster3(t)
	c.createTopic(c.node(1), "cs", 6, 3)
	c.sameMetadata("cs", 10*time.Second)
	ctrl := int32(c.node(1).raft.LeaderID())
	var leaving *Node
	for _, n := range c.running() {
		if int32(n.cfg.NodeID) != ctrl {
			leaving = n
			break
		}
	}
	id := leaving.cfg.NodeID
	if leaving.ledPartitions(leaving.registry().image()) == 0 {
		t.Fatalf("node %d leads nothing", id)
	}
	start := time.Now()
	c.shutdown(id) // reports an error if leadership did not move within ControlledShutdownTimeout
	if led := leaving.ledPartitions(leaving.registry().image()); led != 0 {
		t.Fatalf("node %d still leads %d partitions after controlled shutdown", id, led)
	}
	t.Logf("controlled shutdown of node %d took %v", id, time.Since(start))
	c.eventually(10*time.Second, "survivors see no partition led by the stopped node", func() bool {
		for _, n := range c.running() {
			if n.ledPartitions(n.registry().image()) == 0 {
				return false
			}
			for p := int32(0); p < 6; p++ {
				if st, _ := imagePartition(n, "cs", p); st.Leader == id || st.Leader < 0 {
					return false
				}
			}
		}
		return true
	})
	produceTo(t, c.node(ctrl), "cs", 0, "x")
}

func TestClusterRestartAll(t *testing.T) {
	c := startCluster3(t)
	c.createTopic(c.node(2), "r", 3, 3)
	c.createTopic(c.node(3), "r2", 2, 2)
	for p := int32(0); p < 3; p++ {
		produceTo(t, c.node(1), "r", p, string(rune('x'+p)))
	}
	before := c.sameMetadata("r", 10*time.Second)
	id := c.node(1).registry().get("r").id
	firstLeaders := map[int32]int32{}
	for p := int32(0); p < 3; p++ {
		st, _ := imagePartition(c.node(1), "r", p)
		firstLeaders[p] = st.Leader
	}
	for id := int32(1); id <= 3; id++ {
		c.shutdown(id)
	}
	for id := int32(1); id <= 3; id++ {
		c.start(id)
	}
	c.allReady(30 * time.Second)
	c.eventually(20*time.Second, "every partition led again", func() bool {
		for _, n := range c.running() {
			for _, name := range []string{"r", "r2"} {
				tp := n.registry().get(name)
				if tp == nil {
					return false
				}
				for _, st := range tp.state {
					if st.Leader < 0 {
						return false
					}
				}
			}
		}
		return true
	})
	after := c.sameMetadata("r", 10*time.Second)
	t.Logf("before: %s\nafter:  %s", before, after)
	for _, n := range c.running() {
		if tp := n.registry().get("r"); tp == nil || tp.id != id || tp.numPartitions() != 3 {
			t.Fatalf("node %d lost topic r: %+v", n.cfg.NodeID, tp)
		}
		if tp := n.registry().get("r2"); tp == nil || tp.numPartitions() != 2 {
			t.Fatalf("node %d lost topic r2", n.cfg.NodeID)
		}
	}
	// Each record is still in the log of the replica that took it (no replication yet, so only there).
	for p, l := range firstLeaders {
		part := c.node(l).registry().get("r").partition(p)
		if part == nil || part.Log().LogEndOffset() != 1 {
			t.Fatalf("node %d lost r-%d: %v", l, p, part)
		}
	}
}

func TestClusterZombieHeartbeatRejected(t *testing.T) {
	c := startCluster3(t)
	c.createTopic(c.node(1), "z", 3, 3)
	c.sameMetadata("z", 10*time.Second)
	n2 := c.node(2)
	var part int32 = -1
	var before meta.Partition
	for p := int32(0); p < 3; p++ {
		if st, _ := imagePartition(n2, "z", p); st.Leader == 2 {
			part, before = p, st
		}
	}
	if part < 0 {
		t.Fatal("broker 2 leads no partition of z")
	}
	old := n2.brokerEpoch.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A second life of broker 2 registers (same incarnation: a restart); the first life is now a zombie.
	newEpoch, err := n2.ctrl.register(ctx, n2.registration(n2.identity()))
	if err != nil || newEpoch <= old {
		t.Fatalf("re-register: epoch %d (old %d): %v", newEpoch, old, err)
	}
	reply, err := n2.ctrl.heartbeat(ctx, old, false)
	if err != nil || reply.errorCode != wire.CodeStaleBrokerEpoch {
		t.Fatalf("zombie heartbeat: %+v %v", reply, err)
	}
	// Registering again fenced the old epoch: its leadership moved away with a bumped epoch, and the
	// zombie's replica stopped leading.
	c.eventually(10*time.Second, "leadership moved off the zombie epoch", func() bool {
		for _, n := range c.running() {
			if st, _ := imagePartition(n, "z", part); st.Leader == 2 || st.LeaderEpoch <= before.LeaderEpoch {
				return false
			}
		}
		return !n2.registry().get("z").partition(part).Role().Leader
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(n2.Addrs().ClientPlain))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "z"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, batchtest.Build(batchtest.Values("zombie"))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != wire.CodeNotLeaderOrFollower {
		t.Fatalf("produce to the former leader: code %d", code)
	}
	// The broker's own loop notices the stale epoch and registers again.
	c.eventually(10*time.Second, "broker 2 registered again and unfenced", func() bool {
		return n2.brokerEpoch.Load() > newEpoch && n2.caughtUp()
	})
}

func TestClusterWipedVoterRefused(t *testing.T) {
	c := startCluster3(t)
	c.kill(3)
	if err := os.RemoveAll(c.dirs[3]); err != nil {
		t.Fatal(err)
	}
	n, err := c.tryStart(c.config(3))
	if err == nil {
		t.Fatalf("node 3 started on a wiped data dir (leader %d)", n.raft.LeaderID())
	}
	if !errors.Is(err, ErrWipedVoter) || !strings.Contains(err.Error(), "sluice cluster replace-voter --dead 3") {
		t.Fatalf("wiped voter: %v", err)
	}
	t.Logf("refused: %v", err)
	// The refused start left nothing behind that would let a retry bootstrap.
	if !raftlog.StorageEmpty(filepath.Join(c.dirs[3], "raft")) {
		t.Fatal("refused start wrote a metadata log")
	}
}
