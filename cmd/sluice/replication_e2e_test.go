package main

// Multi-process replication tests: three `sluice dev` brokers, RF=3, min.insync.replicas=2,
// franz-go producers with acks=all and idempotence; leaders killed with SIGKILL, followers frozen
// with SIGSTOP. They check the promise (every acknowledged record survives, exactly once, in
// order), not only that leaders move.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testutil"
)

// steadyProducer produces values "p-<n>" one synchronous request after another (acks=all,
// idempotent: kgo's defaults) until stop is closed or max values were sent. acked lists what was
// acknowledged, in order; failed what ended in an error (it may or may not be in the log).
type steadyProducer struct {
	mu     sync.Mutex
	acked  []string
	failed []string
	done   chan struct{}
}

func startProducer(t *testing.T, d *devCluster, topic string, max int, stop <-chan struct{}) *steadyProducer {
	t.Helper()
	var seeds []string
	for _, n := range d.cf.Nodes {
		seeds = append(seeds, n.ClientPlain)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordRetries(1000), kgo.RetryTimeout(30*time.Second),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	sp := &steadyProducer{done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		defer cl.Close()
		for i := range max {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("p-%05d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr()
			cancel()
			sp.mu.Lock()
			if err == nil {
				sp.acked = append(sp.acked, v)
			} else {
				sp.failed = append(sp.failed, v)
			}
			sp.mu.Unlock()
		}
	}()
	return sp
}

func (sp *steadyProducer) ackedCount() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.acked)
}

// readAll consumes topic from the start until it has read want values or nothing new arrives for
// a while.
func readAll(t *testing.T, d *devCluster, topic string, want int) []string {
	t.Helper()
	var seeds []string
	for _, n := range d.cf.Nodes {
		seeds = append(seeds, n.ClientPlain)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// checkHistory asserts the promise: every acknowledged value is read exactly once, acknowledged
// values appear in the order they were acknowledged, and nothing that was never produced appears.
func checkHistory(t *testing.T, acked, failed, read []string) {
	t.Helper()
	produced := map[string]bool{}
	for _, v := range acked {
		produced[v] = true
	}
	for _, v := range failed {
		produced[v] = true
	}
	seen := map[string]int{}
	for _, v := range read {
		if !produced[v] {
			t.Fatalf("read %q, which was never produced", v)
		}
		seen[v]++
		if seen[v] > 1 {
			t.Fatalf("read %q %d times", v, seen[v])
		}
	}
	for _, v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged %q lost (read %d records, %d acknowledged)", v, len(read), len(acked))
		}
	}
	// Acknowledged values in read order must be the acknowledgement order.
	i := 0
	ackedSet := map[string]bool{}
	for _, v := range acked {
		ackedSet[v] = true
	}
	for _, v := range read {
		if !ackedSet[v] {
			continue
		}
		if v != acked[i] {
			t.Fatalf("acknowledged records out of order at %d: read %q, want %q", i, v, acked[i])
		}
		i++
	}
}

// partitionLeader asks the brokers for topic partition 0's leader.
func partitionLeader(d *devCluster, topic string) (partView, bool) {
	for _, n := range d.cf.Nodes {
		v, err := metadataFrom(context.Background(), n.ClientPlain, topic)
		if err == nil && len(v.Partitions) == 1 && v.Partitions[0].Leader >= 0 {
			return v.Partitions[0], true
		}
	}
	return partView{}, false
}

// segmentBytes is a node's segment bytes of topic-0.
func segmentBytes(t *testing.T, dataDir, topic string) []byte {
	t.Helper()
	return testutil.SegmentBytes(t, filepath.Join(dataDir, topic+"-0"))
}

// fullISR waits until topic partition 0 has all three replicas in sync and returns it with one of
// its followers.
func fullISR(t *testing.T, d *devCluster, topic string) (partView, int32) {
	t.Helper()
	var p partView
	waitFor(t, 30*time.Second, "a full ISR", func() (bool, string) {
		var ok bool
		p, ok = partitionLeader(d, topic)
		return ok && len(p.ISR) == 3, fmt.Sprintf("%+v", p)
	})
	var follower int32
	for _, r := range p.Replicas {
		if r != p.Leader {
			follower = r
		}
	}
	return p, follower
}

// TestReplicationLeaderKills kills the partition leader twice during a steady acks=all produce
// (restarting it each time), then checks the history and that the three replicas' segment bytes
// are identical once quiet.
func TestReplicationLeaderKills(t *testing.T) {
	d := startDev(t, 3)
	cl := d.client(t)
	createTopic(t, cl, "steady", 1, 3)
	stop := make(chan struct{})
	sp := startProducer(t, d, "steady", 4000, stop)
	defer func() {
		close(stop)
		<-sp.done
	}()
	for round := range 2 {
		base := sp.ackedCount()
		waitFor(t, 60*time.Second, "acknowledged writes before a kill", func() (bool, string) {
			n := sp.ackedCount()
			return n >= base+150, fmt.Sprintf("%d acknowledged", n)
		})
		var leader partView
		waitFor(t, 30*time.Second, "a leader with a full ISR", func() (bool, string) {
			p, ok := partitionLeader(d, "steady")
			leader = p
			return ok && len(p.ISR) == 3, fmt.Sprintf("%+v", p)
		})
		d.kill9(leader.Leader)
		t.Logf("round %d: killed leader %d (epoch %d) after %d acknowledged writes", round, leader.Leader, leader.LeaderEpoch, sp.ackedCount())
		waitFor(t, 30*time.Second, "a new leader", func() (bool, string) {
			p, ok := partitionLeader(d, "steady")
			return ok && p.Leader != leader.Leader && p.LeaderEpoch > leader.LeaderEpoch, fmt.Sprintf("%+v", p)
		})
		d.restart(leader.Leader)
		waitFor(t, 60*time.Second, "the old leader back in the ISR", func() (bool, string) {
			p, ok := partitionLeader(d, "steady")
			return ok && len(p.ISR) == 3, fmt.Sprintf("%+v", p)
		})
	}
	base := sp.ackedCount()
	waitFor(t, 60*time.Second, "writes after the last failover", func() (bool, string) {
		return sp.ackedCount() >= base+100, fmt.Sprint(sp.ackedCount())
	})
	close(stop)
	<-sp.done
	stop = make(chan struct{}) // the deferred close has something to close
	sp.mu.Lock()
	acked, failed := sp.acked, sp.failed
	sp.mu.Unlock()
	read := readAll(t, d, "steady", len(acked)+len(failed))
	t.Logf("%d acknowledged, %d failed, %d read", len(acked), len(failed), len(read))
	checkHistory(t, acked, failed, read)

	// Quiescence: every replica ends at the same offset with the same bytes.
	var want []byte
	waitFor(t, 30*time.Second, "identical segment bytes on all three brokers", func() (bool, string) {
		want = segmentBytes(t, d.cf.Nodes[0].DataDir, "steady")
		for _, n := range d.cf.Nodes[1:] {
			if got := segmentBytes(t, n.DataDir, "steady"); !bytes.Equal(got, want) {
				return false, fmt.Sprintf("node %d has %d bytes, node %d %d", n.ID, len(got), d.cf.Nodes[0].ID, len(want))
			}
		}
		return true, ""
	})
}

// TestReplicationFrozenFollower freezes a follower (SIGSTOP) during a steady produce: it leaves the
// ISR, acks=all writes continue once the shrink committed, and after SIGCONT it catches up and
// rejoins. The stall is logged (docs/benchmarks.md records it), not asserted.
func TestReplicationFrozenFollower(t *testing.T) {
	d := startDev(t, 3)
	cl := d.client(t)
	createTopic(t, cl, "frozen", 1, 3)
	stop := make(chan struct{})
	sp := startProducer(t, d, "frozen", 100000, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-sp.done
	}()
	waitFor(t, 60*time.Second, "first writes", func() (bool, string) { return sp.ackedCount() >= 50, "" })
	_, victim := fullISR(t, d, "frozen")
	pid := d.node(victim).PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenAt, before := time.Now(), sp.ackedCount()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	shrunk := waitFor(t, 60*time.Second, "the frozen follower out of the ISR", func() (bool, string) {
		q, ok := partitionLeader(d, "frozen")
		return ok && !containsID(q.ISR, victim), fmt.Sprintf("%+v", q)
	})
	resumed := waitFor(t, 60*time.Second, "acks=all writes again", func() (bool, string) {
		return sp.ackedCount() >= before+50, fmt.Sprint(sp.ackedCount())
	})
	t.Logf("follower %d frozen: ISR shrink seen after %s, 50 more writes acknowledged %s after the freeze",
		victim, shrunk, time.Since(frozenAt).Round(time.Millisecond))
	_ = resumed
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the follower back in the ISR", func() (bool, string) {
		q, ok := partitionLeader(d, "frozen")
		return ok && len(q.ISR) == 3, fmt.Sprintf("%+v", q)
	})
	close(stop)
	<-sp.done
	sp.mu.Lock()
	acked, failed := sp.acked, sp.failed
	sp.mu.Unlock()
	checkHistory(t, acked, failed, readAll(t, d, "frozen", len(acked)+len(failed)))
}

// containsPrefix returns the values that start with prefix.
func containsPrefix(values []string, prefix string) []string {
	var out []string
	for _, v := range values {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}

// TestReplicationDivergence: a leader whose followers are frozen takes acks=1 writes they never
// fetch (an unreplicated tail); it is then frozen itself, a follower becomes leader in a new epoch
// and takes acks=all writes; when the old leader wakes it finds the divergence through the fetch's
// diverging epoch, truncates its tail, and ends with the new leader's exact bytes.
func TestReplicationDivergence(t *testing.T) {
	d := startDev(t, 3)
	cl := d.client(t)
	createTopic(t, cl, "div", 1, 3)
	var p partView
	waitFor(t, 30*time.Second, "a full ISR", func() (bool, string) {
		var ok bool
		p, ok = partitionLeader(d, "div")
		return ok && len(p.ISR) == 3, fmt.Sprintf("%+v", p)
	})
	old := d.node(p.Leader)
	var followers []int32
	for _, r := range p.Replicas {
		if r != p.Leader {
			followers = append(followers, r)
		}
	}
	// Committed history first.
	ctx := context.Background()
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "div", Value: []byte(fmt.Sprintf("committed-%02d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A client that talks to the old leader only, warmed up before the freeze.
	lc, err := kgo.NewClient(kgo.SeedBrokers(old.ClientPlain), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if err := lc.ProduceSync(ctx, &kgo.Record{Topic: "div", Value: []byte("committed-warm")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, f := range followers {
		if err := syscall.Kill(d.node(f).PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		pid := d.node(f).PID
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	}
	tail := 0
	for i := range 5 {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		err := lc.ProduceSync(tctx, &kgo.Record{Topic: "div", Value: []byte(fmt.Sprintf("tail-%d", i))}).FirstErr()
		cancel()
		if err == nil {
			tail++
		}
	}
	if tail == 0 {
		t.Fatal("the old leader acknowledged no acks=1 write while its followers were frozen (its lease ran out at once?)")
	}
	if err := syscall.Kill(old.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(old.PID, syscall.SIGCONT) })
	for _, f := range followers {
		if err := syscall.Kill(d.node(f).PID, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("leader %d took %d unreplicated acks=1 writes, then froze; followers %v resumed", p.Leader, tail, followers)
	nc := d.client(t, followers...)
	var np partView
	waitFor(t, 60*time.Second, "a new leader among the followers", func() (bool, string) {
		for _, f := range followers {
			v, err := metadataFrom(ctx, d.node(f).ClientPlain, "div")
			if err == nil && len(v.Partitions) == 1 && containsID(followers, v.Partitions[0].Leader) &&
				v.Partitions[0].LeaderEpoch > p.LeaderEpoch {
				np = v.Partitions[0]
				return true, ""
			}
		}
		return false, "no new leader yet"
	})
	for i := range 10 {
		if err := nc.ProduceSync(ctx, &kgo.Record{Topic: "div", Value: []byte(fmt.Sprintf("new-%02d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(old.PID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the old leader back in the ISR", func() (bool, string) {
		q, ok := partitionLeader(d, "div")
		return ok && len(q.ISR) == 3, fmt.Sprintf("%+v", q)
	})
	waitFor(t, 30*time.Second, "the old leader's log equal to the new leader's", func() (bool, string) {
		a, b := segmentBytes(t, old.DataDir, "div"), segmentBytes(t, d.node(np.Leader).DataDir, "div")
		return bytes.Equal(a, b), fmt.Sprintf("%d vs %d bytes", len(a), len(b))
	})
	// A follower may have had the first tail write in its socket (a parked fetch the leader answered
	// before the freeze took effect) and appended it on waking: such a write survives on the new
	// leader, as in Kafka. The rest of the tail existed only on the old leader and must be gone.
	read := readAll(t, d, "div", 31)
	survivors := containsPrefix(read, "tail-")
	if len(survivors) >= tail {
		t.Fatalf("no unreplicated write was truncated: %d of %d tail writes read", len(survivors), tail)
	}
	committed, fresh := containsPrefix(read, "committed-"), containsPrefix(read, "new-")
	if len(committed) != 21 || len(fresh) != 10 || len(read) != 31+len(survivors) {
		t.Fatalf("read %d records: %d committed, %d new, %d tail; want 21, 10 and what the new leader kept: %v",
			len(read), len(committed), len(fresh), len(survivors), read)
	}
	t.Logf("%d of %d unreplicated writes truncated on the old leader", tail-len(survivors), tail)
	// ... and it found the cut through the fetch's diverging epoch, not by starting over.
	logb, err := os.ReadFile(old.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(logb), "\n") {
		if strings.Contains(line, `msg="follower truncated"`) && strings.Contains(line, `reason="diverging epoch"`) {
			found = true
		}
		if strings.Contains(line, "follower log restarted at the leader's log start") {
			t.Fatalf("the old leader restarted its log instead of truncating at the divergence: %s", line)
		}
	}
	if !found {
		t.Fatal("the old leader's log has no truncation by diverging epoch")
	}
}

// TestReplicationMinInsync3: with min.insync.replicas=3 and a follower stopped, once the ISR has
// shrunk acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is appended; after the follower
// is back and caught up, writes succeed again.
func TestReplicationMinInsync3(t *testing.T) {
	d := startDev(t, 3)
	cl := d.client(t)
	ctx := context.Background()
	three := "3"
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &three}, "mis3")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	var p partView
	waitFor(t, 30*time.Second, "a full ISR", func() (bool, string) {
		var ok bool
		p, ok = partitionLeader(d, "mis3")
		return ok && len(p.ISR) == 3, fmt.Sprintf("%+v", p)
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mis3", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var victim int32
	for _, r := range p.Replicas {
		if r != p.Leader {
			victim = r
		}
	}
	pid := d.node(victim).PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	waitFor(t, 60*time.Second, "the ISR to shrink", func() (bool, string) {
		q, ok := partitionLeader(d, "mis3")
		return ok && len(q.ISR) == 2, fmt.Sprintf("%+v", q)
	})
	leo := func() int64 {
		for _, lp := range replicationOf(ctx, d.node(p.Leader).HTTP) {
			if lp.Topic == "mis3" {
				return lp.LogEndOffset
			}
		}
		return -1
	}
	before := leo()
	strict, err := kgo.NewClient(kgo.SeedBrokers(d.node(p.Leader).ClientPlain), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	perr := strict.ProduceSync(ctx, &kgo.Record{Topic: "mis3", Value: []byte("refused")}).FirstErr()
	if !errors.Is(perr, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with ISR 2 < 3: %v, want NOT_ENOUGH_REPLICAS", perr)
	}
	if after := leo(); after != before {
		t.Fatalf("a refused write was appended: leader log end %d -> %d", before, after)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the follower back in the ISR", func() (bool, string) {
		q, ok := partitionLeader(d, "mis3")
		return ok && len(q.ISR) == 3, fmt.Sprintf("%+v", q)
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mis3", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("acks=all with the ISR whole again: %v", err)
	}
	if got := readAll(t, d, "mis3", 2); len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Fatalf("read %v, want [before after]", got)
	}
}

// TestReplicationWipedFollower: a follower loses its partition data (its partition directory is
// removed while it is down; its metadata log is kept, as after replacing a data disk): it restarts
// with an empty log, catches up from the leader, rejoins the ISR and ends with the leader's bytes.
func TestReplicationWipedFollower(t *testing.T) {
	d := startDev(t, 3)
	cl := d.client(t)
	createTopic(t, cl, "wiped", 1, 3)
	ctx := context.Background()
	var values []string
	for i := range 200 {
		v := fmt.Sprintf("w-%03d", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "wiped", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	p, victim := fullISR(t, d, "wiped")
	d.kill9(victim)
	if err := os.RemoveAll(filepath.Join(d.node(victim).DataDir, "wiped-0")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the ISR without the wiped follower", func() (bool, string) {
		q, ok := partitionLeader(d, "wiped")
		return ok && !containsID(q.ISR, victim), fmt.Sprintf("%+v", q)
	})
	d.restart(victim)
	waitFor(t, 60*time.Second, "the wiped follower back in the ISR", func() (bool, string) {
		q, ok := partitionLeader(d, "wiped")
		return ok && len(q.ISR) == 3, fmt.Sprintf("%+v", q)
	})
	waitFor(t, 30*time.Second, "the wiped follower's log equal to the leader's", func() (bool, string) {
		a, b := segmentBytes(t, d.node(victim).DataDir, "wiped"), segmentBytes(t, d.node(p.Leader).DataDir, "wiped")
		return bytes.Equal(a, b), fmt.Sprintf("%d vs %d bytes", len(a), len(b))
	})
	checkHistory(t, values, nil, readAll(t, d, "wiped", len(values)))
}
