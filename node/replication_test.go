package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testutil"
)

// produceAll writes values to topic partition 0 with acks=all and idempotence, one synchronous
// request per value, and returns the values that were acknowledged.
func produceAll(t *testing.T, seed *Node, topic string, values []string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed.Addrs().ClientPlain), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked []string
	for _, v := range values {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
		acked = append(acked, v)
	}
	return acked
}

// leaderOf returns the running node that leads topic partition p in its own image.
func (c *testCluster) leaderOf(topic string, p int32) *Node {
	for _, n := range c.running() {
		if st, ok := imagePartition(n, topic, p); ok && st.Leader == n.cfg.NodeID {
			if tp := n.registry().get(topic); tp != nil && tp.partition(p) != nil && tp.partition(p).Role().Leader {
				return n
			}
		}
	}
	return nil
}

// logBytes is a replica's segment bytes of topic-p.
func logBytes(t *testing.T, n *Node, topic string, p int32) []byte {
	t.Helper()
	return testutil.SegmentBytes(t, filepath.Join(n.cfg.DataDir, fmt.Sprintf("%s-%d", topic, p)))
}

// TestReplicationSurvivesLeaderKill: with RF=3, every acks=all record is on every replica, byte for
// byte, and a kill of the leader loses none of them.
func TestReplicationSurvivesLeaderKill(t *testing.T) {
	c := startCluster3(t)
	c.createTopic(c.node(1), "r", 1, 3)
	c.sameMetadata("r", 10*time.Second)
	var values []string
	for i := range 200 {
		values = append(values, fmt.Sprintf("v%03d", i))
	}
	acked := produceAll(t, c.node(1), "r", values[:100])

	leader := c.leaderOf("r", 0)
	if leader == nil {
		t.Fatal("no leader")
	}
	// Every replica reaches the leader's log end, and their segment bytes are identical.
	leo := leader.registry().get("r").partition(0).Log().LogEndOffset()
	c.eventually(20*time.Second, "followers caught up", func() bool {
		for _, n := range c.running() {
			if n.registry().get("r").partition(0).Log().LogEndOffset() != leo {
				return false
			}
		}
		return true
	})
	// The followers got their bytes from the leader's sendfile path, byte for byte.
	var served, copied, received float64
	for _, n := range c.running() {
		served += counterValue(t, n, "sluice_replica_fetch_bytes_total", map[string]string{"path": pathSendfile})
		copied += counterValue(t, n, "sluice_replica_fetch_bytes_total", map[string]string{"path": pathCopy})
		received += counterValue(t, n, "sluice_replica_received_bytes_total", nil)
	}
	if served == 0 || served != received || copied != 0 {
		t.Fatalf("replica bytes: %v served with sendfile, %v copied, %v received", served, copied, received)
	}
	want := logBytes(t, leader, "r", 0)
	if 2*float64(len(want)) != received {
		t.Fatalf("followers received %v bytes for a %d-byte log on each", received, len(want))
	}
	for _, n := range c.running() {
		if got := logBytes(t, n, "r", 0); !bytes.Equal(got, want) {
			t.Fatalf("node %d log differs from leader %d: %d vs %d bytes", n.cfg.NodeID, leader.cfg.NodeID, len(got), len(want))
		}
	}

	old, _ := imagePartition(leader, "r", 0)
	c.kill(leader.cfg.NodeID)
	t.Logf("killed leader %d at log end %d", old.Leader, leo)
	c.eventually(20*time.Second, "a new leader", func() bool {
		nl := c.leaderOf("r", 0)
		return nl != nil && nl.cfg.NodeID != old.Leader
	})
	acked = append(acked, produceAll(t, c.running()[0], "r", values[100:])...)
	got := consumeCluster(t, c.running()[0], "r", len(acked))
	if !slices.Equal(got, acked) {
		t.Fatalf("after failover read %d records, acknowledged %d; first difference at %d", len(got), len(acked), firstDiff(got, acked))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestReplicationISRShrinkAndExpand: a killed follower leaves the ISR, acks=all with
// min.insync.replicas=3 is then refused before anything is appended, and the follower, restarted with
// its partition directory wiped, catches up and rejoins.
func TestReplicationISRShrinkAndExpand(t *testing.T) {
	c := startCluster3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v := "3"
	resp, err := c.admin(c.node(1)).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &v}, "s")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	c.sameMetadata("s", 10*time.Second)
	produceAll(t, c.node(1), "s", []string{"a", "b"})
	leader := c.leaderOf("s", 0)
	var victim int32
	for _, n := range c.running() {
		if n != leader {
			victim = n.cfg.NodeID
		}
	}
	c.kill(victim)
	c.eventually(30*time.Second, "the ISR to shrink", func() bool {
		st, _ := imagePartition(leader, "s", 0)
		return len(st.ISR) == 2 && !slices.Contains(st.ISR, victim)
	})
	leo := leader.registry().get("s").partition(0).Log().LogEndOffset()
	cl, err := kgo.NewClient(kgo.SeedBrokers(leader.Addrs().ClientPlain), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	perr := cl.ProduceSync(ctx, &kgo.Record{Topic: "s", Value: []byte("refused")}).FirstErr()
	if !errors.Is(perr, kerr.NotEnoughReplicas) {
		t.Fatalf("produce with ISR 2 < min.insync 3: %v, want NOT_ENOUGH_REPLICAS", perr)
	}
	if got := leader.registry().get("s").partition(0).Log().LogEndOffset(); got != leo {
		t.Fatalf("a refused write was appended: log end %d -> %d", leo, got)
	}

	// The follower lost its partition data (a replaced data disk) but kept its metadata log: it
	// rejoins with an empty log, catches up from the leader's log start, and only then joins the ISR.
	if err := os.RemoveAll(filepath.Join(c.dirs[victim], "s-0")); err != nil {
		t.Fatal(err)
	}
	c.start(victim)
	c.eventually(30*time.Second, "the restarted follower to rejoin the ISR", func() bool {
		st, _ := imagePartition(leader, "s", 0)
		return len(st.ISR) == 3
	})
	acked := produceAll(t, leader, "s", []string{"c"})
	got := consumeCluster(t, leader, "s", 3)
	if !slices.Equal(got, []string{"a", "b", acked[0]}) {
		t.Fatalf("read %v", got)
	}
	// The wiped replica holds the same bytes as the leader once it has fetched "c".
	c.eventually(20*time.Second, "the wiped follower to hold the leader's log", func() bool {
		return bytes.Equal(logBytes(t, c.node(victim), "s", 0), logBytes(t, leader, "s", 0))
	})
}
