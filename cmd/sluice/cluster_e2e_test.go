package main

// Multi-process cluster tests: `sluice dev --nodes 3` on 127.0.0.1 ports,
// real processes killed with SIGKILL and restarted from cluster.json's argv.

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/clusterfile"
)

// brokerView is what one broker's Metadata answer says about a topic.
type brokerView struct {
	Controller int32
	Brokers    []int32
	Partitions []partView
}

type partView struct {
	Partition   int32
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

func (d *devCluster) client(t *testing.T, nodes ...int32) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, n := range d.cf.Nodes {
		if len(nodes) == 0 || containsID(nodes, n.ID) {
			seeds = append(seeds, n.ClientPlain)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// metadataFrom asks one broker, directly, for its view of topic.
func metadataFrom(ctx context.Context, addr, topic string) (brokerView, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(time.Second))
	if err != nil {
		return brokerView{}, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // empty, not null: no topics unless one is named
	if topic != "" {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl.Broker(math.MinInt32)) // kgo numbers seed brokers from MinInt32: the broker at addr
	if err != nil {
		return brokerView{}, err
	}
	v := brokerView{Controller: resp.ControllerID}
	for _, b := range resp.Brokers {
		v.Brokers = append(v.Brokers, b.NodeID)
	}
	sort.Slice(v.Brokers, func(i, j int) bool { return v.Brokers[i] < v.Brokers[j] })
	for _, tp := range resp.Topics {
		if tp.ErrorCode != 0 {
			return v, fmt.Errorf("topic %s: error %d", topic, tp.ErrorCode)
		}
		for _, p := range tp.Partitions {
			v.Partitions = append(v.Partitions, partView{p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR})
		}
	}
	sort.Slice(v.Partitions, func(i, j int) bool { return v.Partitions[i].Partition < v.Partitions[j].Partition })
	return v, nil
}

// waitFor polls cond until it holds or the limit passes; it returns the
// time taken. Polling a remote system has no channel to wait on.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		last = why
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s: %s", what, limit, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *devCluster) node(id int32) *clusterfile.Node {
	n, ok := d.cf.Node(id)
	if !ok {
		d.t.Fatalf("no node %d", id)
	}
	return n
}

// kill9 kills a node without warning.
func (d *devCluster) kill9(id int32) {
	n := d.node(id)
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
		d.t.Fatalf("kill -9 node %d (pid %d): %v", id, n.PID, err)
	}
	if err := waitGone(n.PID, 10*time.Second); err != nil {
		d.t.Fatal(err)
	}
}

// restart runs a node's argv from cluster.json, the documented way to bring
// a node back, and records the new pid.
func (d *devCluster) restart(id int32) *exec.Cmd {
	n := d.node(id)
	p, err := startNode(n)
	if err != nil {
		d.t.Fatal(err)
	}
	n.PID = p.cmd.Process.Pid
	if err := clusterfile.Write(d.cfPath, d.cf); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	})
	return p.cmd
}

func createTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, nil, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v %s", name, err, resp.Err, resp.ErrMessage)
	}
}

func TestClusterFormationAndMetadata(t *testing.T) {
	d := startDev(t, 3)
	if len(d.cf.Nodes) != 3 || d.cf.Nodes[2].Internal == "" || d.cf.Nodes[2].Gossip == "" {
		t.Fatalf("cluster.json nodes: %+v", d.cf.Nodes)
	}
	cl := d.client(t, 2) // admin through a broker that need not be the controller
	createTopic(t, cl, "orders", 6, 3)

	ctx := context.Background()
	var first brokerView
	waitFor(t, 10*time.Second, "identical metadata on every broker", func() (bool, string) {
		var views []brokerView
		for _, n := range d.cf.Nodes {
			v, err := metadataFrom(ctx, n.ClientPlain, "orders")
			if err != nil {
				return false, err.Error()
			}
			views = append(views, v)
		}
		for _, v := range views[1:] {
			if !reflect.DeepEqual(v, views[0]) {
				return false, fmt.Sprintf("%+v vs %+v", views[0], v)
			}
		}
		first = views[0]
		return len(first.Partitions) == 6, fmt.Sprintf("%d partitions", len(first.Partitions))
	})
	if !reflect.DeepEqual(first.Brokers, []int32{1, 2, 3}) || first.Controller < 1 || first.Controller > 3 {
		t.Fatalf("brokers %v controller %d", first.Brokers, first.Controller)
	}
	leaders := map[int32]int{}
	for _, p := range first.Partitions {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 || p.Leader != p.Replicas[0] {
			t.Fatalf("partition %+v: want 3 replicas, full ISR, leader = first replica", p)
		}
		leaders[p.Leader]++
	}
	for id := int32(1); id <= 3; id++ {
		if leaders[id] != 2 {
			t.Fatalf("leaders per broker %v, want 2 each", leaders)
		}
	}
	// Records produced through the cluster come back.
	pcl := d.client(t)
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for i := range 60 {
		if err := pcl.ProduceSync(ctx2, &kgo.Record{Topic: "orders", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := d.cli("", "cluster", "status")
	if err != nil || !strings.Contains(out, "controller") || !strings.Contains(out, "cluster "+d.cf.ClusterID) {
		t.Fatalf("cluster status (cluster.json id %s): %q %v", d.cf.ClusterID, out, err)
	}
}

func TestClusterControllerKill(t *testing.T) {
	d := startDev(t, 3)
	ctx := context.Background()
	st := d.status(t, 1)
	old := st.ControllerID
	var survivor *clusterfile.Node
	for i := range d.cf.Nodes {
		if d.cf.Nodes[i].ID != old {
			survivor = &d.cf.Nodes[i]
			break
		}
	}
	d.kill9(old)
	killed := time.Now()
	// A new controller has committed once a survivor reports a raft leader
	// other than the dead one, in a later term, with the applied index past
	// where it was: the new leader commits an entry as it takes over.
	waitFor(t, 15*time.Second, "a new controller commits", func() (bool, string) {
		now := d.status(t, survivor.ID)
		ok := now.ControllerID > 0 && now.ControllerID != old && now.Term > st.Term && now.AppliedIndex > st.AppliedIndex
		return ok, fmt.Sprintf("controller %d term %d applied %d (before: %d, %d, %d)", now.ControllerID, now.Term, now.AppliedIndex, old, st.Term, st.AppliedIndex)
	})
	took := time.Since(killed)
	// The time is logged, not asserted: a shared 2-core runner gives no wall-clock bound
	// (docs/benchmarks.md records the measured failover times).
	t.Logf("controller %d killed; a new controller committed after %s", old, took)
	// And it serves admin requests.
	cl := d.client(t, survivor.ID)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(cctx, 1, 2, nil, "after-kill")
	if err != nil || resp.Err != nil {
		t.Fatalf("create after failover: %v %v", err, resp.Err)
	}
}

func TestClusterLeaderKillElectsFromISR(t *testing.T) {
	d := startDev(t, 3)
	ctx := context.Background()
	cl := d.client(t)
	createTopic(t, cl, "failover", 3, 3)
	var before brokerView
	waitFor(t, 10*time.Second, "topic visible", func() (bool, string) {
		v, err := metadataFrom(ctx, d.cf.Nodes[0].ClientPlain, "failover")
		before = v
		return err == nil && len(v.Partitions) == 3, fmt.Sprint(err)
	})
	p0 := before.Partitions[0]
	victim := p0.Leader
	if victim == before.Controller { // kill a leader that is not the controller: separate failures
		p0 = before.Partitions[1]
		victim = p0.Leader
		if victim == before.Controller {
			p0 = before.Partitions[2]
			victim = p0.Leader
		}
	}
	var watch *clusterfile.Node
	for i := range d.cf.Nodes {
		if d.cf.Nodes[i].ID != victim {
			watch = &d.cf.Nodes[i]
		}
	}
	d.kill9(victim)
	var after partView
	took := waitFor(t, 12*time.Second, "a new leader from the ISR", func() (bool, string) {
		v, err := metadataFrom(ctx, watch.ClientPlain, "failover")
		if err != nil {
			return false, err.Error()
		}
		after = v.Partitions[p0.Partition]
		return after.Leader >= 0 && after.Leader != victim, fmt.Sprintf("%+v", after)
	})
	t.Logf("leader %d of partition %d killed; new leader %d (epoch %d -> %d) after %s", victim, p0.Partition, after.Leader, p0.LeaderEpoch, after.LeaderEpoch, took)
	if !containsID(p0.ISR, after.Leader) {
		t.Fatalf("new leader %d not from the old ISR %v", after.Leader, p0.ISR)
	}
	if after.LeaderEpoch <= p0.LeaderEpoch {
		t.Fatalf("leader epoch %d -> %d, want a bump", p0.LeaderEpoch, after.LeaderEpoch)
	}
	if containsID(after.ISR, victim) {
		t.Fatalf("fenced broker %d still in ISR %v", victim, after.ISR)
	}
}

func TestClusterRestartAll(t *testing.T) {
	d := startDev(t, 3)
	ctx := context.Background()
	cl := d.client(t)
	for i := range 3 {
		createTopic(t, cl, fmt.Sprintf("keep-%d", i), int32(2+i), 3)
	}
	before := make([]brokerView, 3)
	waitFor(t, 10*time.Second, "topics visible on node 1", func() (bool, string) {
		for i := range 3 {
			v, err := metadataFrom(ctx, d.cf.Nodes[0].ClientPlain, fmt.Sprintf("keep-%d", i))
			if err != nil {
				return false, err.Error()
			}
			before[i] = v
		}
		return true, ""
	})
	for _, n := range d.cf.Nodes {
		d.kill9(n.ID)
	}
	for _, n := range d.cf.Nodes {
		d.restart(n.ID)
	}
	waitFor(t, 30*time.Second, "every topic, partition and leader back", func() (bool, string) {
		for i := range 3 {
			for _, n := range d.cf.Nodes {
				v, err := metadataFrom(ctx, n.ClientPlain, fmt.Sprintf("keep-%d", i))
				if err != nil {
					return false, err.Error()
				}
				if len(v.Partitions) != len(before[i].Partitions) {
					return false, fmt.Sprintf("keep-%d: %d partitions", i, len(v.Partitions))
				}
				for j, p := range v.Partitions {
					if p.Leader < 1 || !reflect.DeepEqual(p.Replicas, before[i].Partitions[j].Replicas) {
						return false, fmt.Sprintf("keep-%d/%d: %+v", i, j, p)
					}
				}
			}
		}
		return true, ""
	})
}

func TestClusterWipedVoterRefused(t *testing.T) {
	d := startDev(t, 3)
	victim := d.node(3)
	d.kill9(3)
	if err := os.RemoveAll(victim.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(victim.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, victim.Argv[0], victim.Argv[1:]...)
	cmd.Dir = victim.WorkDir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a voter with a wiped data directory started:\n%s", out)
	}
	if !strings.Contains(string(out), "replace-voter") {
		t.Fatalf("refusal does not name the recovery command:\n%s", out)
	}

	// The documented recovery: the machine comes back as node 4 on its empty
	// disk (it joins as a learner), and replace-voter swaps it in for 3.
	base := freeBasePort(t, 1)
	set := map[string]string{
		"--node-id":           "4",
		"--data-dir":          victim.DataDir + "-new",
		"--client-plain.addr": hostPort(base + portPlain),
		"--client.addr":       hostPort(base + portTLS),
		"--http.addr":         hostPort(base + portHTTP),
		"--internal.addr":     hostPort(base + portInternal),
		"--gossip.addr":       hostPort(base + portGossip),
	}
	argv := append([]string(nil), victim.Argv...)
	for i := 0; i+1 < len(argv); i++ {
		if v, ok := set[argv[i]]; ok {
			argv[i+1] = v
		}
	}
	newNode := clusterfile.Node{ID: 4, Argv: argv, WorkDir: victim.WorkDir, DataDir: set["--data-dir"],
		LogFile: victim.LogFile + ".node4", ClientPlain: set["--client-plain.addr"], Client: set["--client.addr"],
		HTTP: set["--http.addr"], Internal: set["--internal.addr"], Gossip: set["--gossip.addr"]}
	d.cf.Nodes = append(d.cf.Nodes, newNode)
	d.restart(4)
	waitFor(t, 20*time.Second, "node 4 registered", func() (bool, string) {
		st := d.status(t, 1)
		e, fenced := brokerEpoch(st, 4)
		return e > 0 && !fenced, fmt.Sprintf("epoch %d fenced %v learners %v", e, fenced, st.Learners)
	})
	out2, err := d.cli("", "cluster", "replace-voter", "--dead", "3", "--new", "4")
	if err != nil {
		t.Fatalf("replace-voter: %v\n%s", err, out2)
	}
	waitFor(t, 10*time.Second, "voters 1, 2, 4", func() (bool, string) {
		st := d.status(t, 1)
		v := append([]int32(nil), st.Voters...)
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return reflect.DeepEqual(v, []int32{1, 2, 4}), fmt.Sprint(st.Voters)
	})
	// The reshaped voter set still commits.
	createTopic(t, d.client(t, 1), "after-replace", 1, 3)
}
