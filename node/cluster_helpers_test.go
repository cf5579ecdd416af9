package node

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog/meta"
)

// testCluster runs brokers 1..size in this process: real raft, gossip, link and files, every
// listener on 127.0.0.1:0, with short heartbeat, session and raft tick settings.
type testCluster struct {
	t      *testing.T
	size   int
	secret string
	dirs   map[int32]string

	mu    sync.Mutex
	nodes map[int32]*Node // running nodes
}

func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, size: size, dirs: map[int32]string{}, nodes: map[int32]*Node{}}
	c.secret = filepath.Join(t.TempDir(), "cluster.secret")
	if _, err := link.GenerateSecretFile(c.secret); err != nil {
		t.Fatal(err)
	}
	for id := int32(1); id <= int32(size); id++ {
		c.dirs[id] = t.TempDir()
	}
	t.Cleanup(func() {
		c.mu.Lock()
		nodes := make([]*Node, 0, len(c.nodes))
		for _, n := range c.nodes {
			nodes = append(nodes, n)
		}
		c.mu.Unlock()
		for _, n := range nodes {
			n.kill()
		}
	})
	return c
}

func (c *testCluster) config(id int32) Config {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = c.dirs[id]
	cfg.ClientPlain = Listener{Addr: "127.0.0.1:0"}
	cfg.HTTP = Listener{Addr: "127.0.0.1:0"}
	cfg.Internal = Listener{Addr: "127.0.0.1:0"}
	cfg.Gossip = Listener{Addr: "127.0.0.1:0"}
	cfg.ClusterSecretFile = c.secret
	for v := int32(1); v <= int32(c.size); v++ {
		cfg.InitialVoters = append(cfg.InitialVoters, v)
	}
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.SessionTimeout = 1500 * time.Millisecond
	cfg.LeaderLease = time.Second
	cfg.RaftTickInterval = 25 * time.Millisecond
	cfg.ControlledShutdownTimeout = 10 * time.Second
	cfg.PreferredLeaderInterval = 0
	cfg.Logger = testLogger(c.t)
	c.mu.Lock()
	for _, n := range c.nodes {
		cfg.Seeds = append(cfg.Seeds, n.Addrs().Gossip)
	}
	c.mu.Unlock()
	return cfg
}

// start starts broker id (from its data dir, if it ran before) seeded with the running ones.
func (c *testCluster) start(id int32) *Node {
	c.t.Helper()
	n, err := c.tryStart(c.config(id))
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	return n
}

func (c *testCluster) tryStart(cfg Config) (*Node, error) {
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(context.Background()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nodes[cfg.NodeID] = n
	c.mu.Unlock()
	return n, nil
}

func (c *testCluster) node(id int32) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *testCluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for id := int32(1); id <= int32(c.size); id++ {
		if n := c.nodes[id]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// kill stops broker id abruptly (no controlled shutdown, no gossip leave).
func (c *testCluster) kill(id int32) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	n.kill()
}

// shutdown stops broker id gracefully.
func (c *testCluster) shutdown(id int32) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		c.t.Errorf("shutdown node %d: %v", id, err)
	}
}

// eventually waits (up to d) until cond holds, re-checking whenever any running node's cluster state
// changes, and at least every 50ms to notice changes in other nodes.
func (c *testCluster) eventually(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		chans := []<-chan struct{}{}
		for _, n := range c.running() {
			chans = append(chans, n.changed.wait())
		}
		waitAny(ctx, chans)
		cancel()
	}
}

func waitAny(ctx context.Context, chans []<-chan struct{}) {
	done := make(chan struct{})
	var once sync.Once
	for _, ch := range chans {
		go func() {
			select {
			case <-ch:
				once.Do(func() { close(done) })
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// allReady waits until every running node is ready (leader known, registered, unfenced, caught up)
// and every node's image lists every running broker unfenced.
func (c *testCluster) allReady(d time.Duration) {
	c.t.Helper()
	c.eventually(d, "all nodes ready", func() bool {
		nodes := c.running()
		for _, n := range nodes {
			if !n.caughtUp() {
				return false
			}
			img := n.registry().image()
			for _, o := range nodes {
				if b, ok := img.Broker(o.cfg.NodeID); !ok || b.Fenced || b.Epoch != o.brokerEpoch.Load() {
					return false
				}
			}
		}
		return true
	})
}

func (c *testCluster) admin(n *Node) *kadm.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addrs().ClientPlain))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// metadata asks node n for every topic's metadata over its plaintext listener.
func metadataOf(t *testing.T, n *Node) *kmsg.MetadataResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addrs().ClientPlain))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ask that very broker (not whichever the client picks).
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Fatalf("metadata from node %d: %v", n.cfg.NodeID, err)
	}
	return resp
}

// partitionSummary renders a topic's partitions (leader, epoch, replicas, ISR, error) comparably.
func partitionSummary(resp *kmsg.MetadataResponse, topic string) string {
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		ps := slices.Clone(t.Partitions)
		slices.SortFunc(ps, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
		s := fmt.Sprintf("id=%x", t.TopicID)
		for _, p := range ps {
			s += fmt.Sprintf(" [%d leader=%d epoch=%d replicas=%v isr=%v offline=%v err=%d]",
				p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.OfflineReplicas, p.ErrorCode)
		}
		return s
	}
	return "<missing>"
}

// imagePartition returns partition p of topic from node n's applied image.
func imagePartition(n *Node, topic string, p int32) (meta.Partition, bool) {
	t, ok := n.registry().image().TopicByName(topic)
	if !ok || int(p) >= len(t.Partitions) {
		return meta.Partition{}, false
	}
	return t.Partitions[p], true
}
