package raftlog

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/internal/testutil"
	"github.com/sluice-io/sluice/raftlog/meta"
)

// A cluster of real Nodes on loopback TCP: each member has a link.Listener
// (cluster secret), real storage under t.TempDir(), and its Run goroutine.

// countingMachine is a MetaMachine that counts snapshot restores.
type countingMachine struct {
	*MetaMachine
	mu       sync.Mutex
	restores int
}

func (c *countingMachine) Restore(data []byte, index uint64) error {
	c.mu.Lock()
	c.restores++
	c.mu.Unlock()
	return c.MetaMachine.Restore(data, index)
}

func (c *countingMachine) Restores() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restores
}

type member struct {
	id     uint64
	node   *Node
	sm     *countingMachine
	ln     *link.Listener
	cancel context.CancelFunc
	runErr chan error
	accept chan struct{} // closed when the accept loop ends
}

type harness struct {
	t        testing.TB
	secret   []byte
	root     string
	voters   []uint64
	logs     *testutil.Buffer
	logger   *slog.Logger
	mutate   func(*Config)
	mu       sync.Mutex
	addrs    map[uint64]string
	members  map[uint64]*member
	refusals chan link.Refusal
}

func testSecret() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return []byte(hex.EncodeToString(b))
}

func newHarness(t testing.TB, voters []uint64, mutate func(*Config)) *harness {
	h := &harness{
		t: t, secret: testSecret(), root: t.TempDir(), voters: voters, mutate: mutate,
		logs: &testutil.Buffer{}, addrs: map[uint64]string{}, members: map[uint64]*member{},
		refusals: make(chan link.Refusal, 16),
	}
	h.logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		for _, id := range h.ids() {
			h.kill(id)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
	})
	return h
}

func (h *harness) resolve(id uint64) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.addrs[id]
	return a, ok
}

func (h *harness) ids() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []uint64
	for id := range h.members {
		out = append(out, id)
	}
	return out
}

func (h *harness) member(id uint64) *member {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.members[id]
	if m == nil {
		h.t.Fatalf("node %d is not running", id)
	}
	return m
}

func (h *harness) startAll() {
	for _, id := range h.voters {
		h.start(id)
	}
}

// start runs node id from its data directory on a fresh port.
func (h *harness) start(id uint64) *member {
	t := h.t
	t.Helper()
	lcfg := link.DefaultListenerConfig()
	lcfg.Secret = h.secret
	lcfg.SelfID = int32(id)
	lcfg.Logger = h.logger
	lcfg.OnRefused = func(r link.Refusal) {
		select {
		case h.refusals <- r:
		default:
		}
	}
	ln, err := link.Listen(context.Background(), "127.0.0.1:0", lcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.DataDir = filepath.Join(h.root, fmt.Sprintf("n%d", id))
	cfg.InitialVoters = h.voters
	cfg.Peers = h.resolve
	cfg.Transport.Secret = h.secret
	cfg.Logger = h.logger
	if h.mutate != nil {
		h.mutate(&cfg)
	}
	sm := &countingMachine{MetaMachine: NewMetaMachine(0, h.logger)}
	n, err := NewNode(cfg, sm)
	if err != nil {
		_ = ln.Close()
		t.Fatalf("node %d: NewNode: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{id: id, node: n, sm: sm, ln: ln, cancel: cancel, runErr: make(chan error, 1), accept: make(chan struct{})}
	go func() { m.runErr <- n.Run(ctx) }()
	go func() {
		defer close(m.accept)
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			if a.Purpose != link.PurposeRaft {
				_ = a.Conn.Close()
				continue
			}
			go func() { _ = n.Serve(a.Conn, a.PeerID) }()
		}
	}()
	h.mu.Lock()
	h.addrs[id] = ln.Addr().String()
	h.members[id] = m
	h.mu.Unlock()
	return m
}

// kill stops node id abruptly: its context is cancelled and its listener
// closed, with no goodbye to its peers (its sockets just close, as a killed
// process's would).
func (h *harness) kill(id uint64) {
	h.mu.Lock()
	m := h.members[id]
	delete(h.members, id)
	h.mu.Unlock()
	if m == nil {
		return
	}
	m.cancel()
	_ = m.ln.Close()
	if err := <-m.runErr; err != nil {
		h.t.Errorf("node %d: Run: %v", id, err)
	}
	<-m.accept
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// waitLeader waits until every running node agrees on one leader that
// knows it leads, and returns it.
func (h *harness) waitLeader(timeout time.Duration) uint64 {
	h.t.Helper()
	var leader uint64
	eventually(h.t, timeout, "a leader all nodes agree on", func() bool {
		leader = 0
		for _, id := range h.ids() {
			m := h.member(id)
			l := m.node.LeaderID()
			if l == 0 || (leader != 0 && l != leader) {
				return false
			}
			leader = l
		}
		h.mu.Lock()
		lm := h.members[leader]
		h.mu.Unlock()
		return lm != nil && lm.node.IsLeader()
	})
	return leader
}

// propose proposes cmd on the leader, retrying through leader changes.
func (h *harness) propose(cmd meta.Command) (uint64, meta.Delta) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		leader := h.waitLeader(10 * time.Second)
		idx, d, err := ProposeCommand(ctx, h.member(leader).node, cmd)
		if err == nil {
			return idx, d
		}
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrProposalDropped) {
			continue
		}
		h.t.Fatalf("propose %v: %v", cmd.Type(), err)
	}
}

// waitConverged waits until every running node has applied index and
// holds the same image, and returns that image.
func (h *harness) waitConverged(index uint64) *meta.Image {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ref *meta.Image
	for _, id := range h.ids() {
		m := h.member(id)
		if err := m.node.WaitApplied(ctx, index); err != nil {
			h.t.Fatalf("node %d: applied %d, want %d: %v", id, m.node.AppliedIndex(), index, err)
		}
		img := m.sm.Image()
		if ref == nil {
			ref = img
		} else if !bytes.Equal(meta.EncodeImage(ref), meta.EncodeImage(img)) {
			h.t.Fatalf("node %d image differs (index %d vs %d)", id, img.Index(), ref.Index())
		}
	}
	return ref
}

// registerBrokers registers and unfences brokers 1..3, so topics can be
// placed on them; it returns the last index.
func (h *harness) registerBrokers() uint64 {
	h.t.Helper()
	var last uint64
	for id := int32(1); id <= 3; id++ {
		epoch, _ := h.propose(regCmd(id))
		last, _ = h.propose(meta.UnfenceBroker{NodeID: id, BrokerEpoch: int64(epoch)})
	}
	return last
}

func regCmd(id int32) meta.RegisterBroker {
	return meta.RegisterBroker{NodeID: id, ClusterID: "test-cluster", Incarnation: [16]byte{byte(id), 7},
		Addresses: meta.Addresses{Internal: fmt.Sprintf("127.0.0.1:%d", 9000+id)}}
}

func topicCmd(i int) meta.CreateTopic {
	var id meta.TopicID
	id[0], id[1] = 0xAB, byte(i)
	id[15] = byte(i >> 8)
	return meta.CreateTopic{Name: fmt.Sprintf("topic-%03d", i), TopicID: id, Partitions: [][]int32{{1, 2, 3}, {2, 3, 1}}}
}

func TestNodeConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.ID, good.DataDir, good.InitialVoters = 1, t.TempDir(), []uint64{1, 2, 3}
	good.Peers = func(uint64) (string, bool) { return "", false }
	good.Transport.Secret = testSecret()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mut  func(*Config)
	}{
		{"zero id", func(c *Config) { c.ID = 0 }},
		{"id beyond int32", func(c *Config) { c.ID = 1 << 31 }},
		{"no data dir", func(c *Config) { c.DataDir = "" }},
		{"duplicate voters", func(c *Config) { c.InitialVoters = []uint64{1, 2, 2} }},
		{"no resolver", func(c *Config) { c.Peers = nil }},
		{"election <= heartbeat", func(c *Config) { c.ElectionTicks = 1 }},
		{"no snapshot policy", func(c *Config) { c.SnapshotEntries = 0 }},
		{"frame below message size", func(c *Config) { c.Transport.MaxFrameSize = int(c.MaxSizePerMsg) }},
		{"no secret", func(c *Config) { c.Transport.Secret = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mut(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
			if _, err := NewNode(c, NewMetaMachine(0, nil)); err == nil {
				t.Fatal("NewNode accepted it")
			}
		})
	}
}
