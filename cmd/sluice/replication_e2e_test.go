package main

// Multi-process replication tests: three `sluice dev` brokers, RF=3, min.insync.replicas=2,
// franz-go producers with acks=all and idempotence; leaders killed with SIGKILL, followers frozen
// with SIGSTOP. They check the promise (every acknowledged record survives, exactly once, in
// order), not only that leaders move.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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

// segmentBytes concatenates a node's segment files of topic-0.
func segmentBytes(t *testing.T, dataDir, topic string) []byte {
	t.Helper()
	dir := filepath.Join(dataDir, topic+"-0")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var all []byte
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
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
	var p partView
	waitFor(t, 30*time.Second, "a full ISR", func() (bool, string) {
		var ok bool
		p, ok = partitionLeader(d, "frozen")
		return ok && len(p.ISR) == 3, fmt.Sprintf("%+v", p)
	})
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
