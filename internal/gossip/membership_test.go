package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testutil"
)

// eventWait bounds every wait on gossip events; failure detection with the
// test timing takes about a second, so this only trips on a real bug.
const eventWait = 30 * time.Second

var testSecret = []byte("6f1c0a7e9b3d4c5a8e2f1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e")

type testNode struct {
	*Membership
	logs *testutil.Buffer

	mu     sync.Mutex
	events []Member      // every OnChange event, in order
	cursor map[int32]int // per member: events already examined
	notify chan struct{} // cap 1: events grew
}

func testConfig(id int32) Config {
	c := LocalConfig()
	c.NodeID = id
	c.BindAddr = "127.0.0.1:0"
	c.Secret = testSecret
	c.Meta = NodeMeta{
		NodeID:      id,
		Internal:    fmt.Sprintf("127.0.0.1:%d", 19000+id),
		Client:      fmt.Sprintf("127.0.0.1:%d", 29000+id),
		ClientPlain: fmt.Sprintf("127.0.0.1:%d", 39000+id),
		HTTP:        fmt.Sprintf("127.0.0.1:%d", 49000+id),
		Rack:        fmt.Sprintf("rack-%d", id%2),
		Incarnation: uint64(100 + id),
	}
	// Fast failure detection for tests: suspicion after 2 missed 100 ms
	// pings (~250 ms), death after memberlist's failed probe plus its
	// 6-interval suspicion timeout (≥ 700 ms), so Suspect reliably comes
	// first even on a loaded machine.
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.SuspicionMult = 6
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	return c
}

func startNode(t *testing.T, cfg Config) *testNode {
	t.Helper()
	n := &testNode{logs: &testutil.Buffer{}, cursor: make(map[int32]int), notify: make(chan struct{}, 1)}
	cfg.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.OnChange = func(m Member) {
		n.mu.Lock()
		n.events = append(n.events, m)
		n.mu.Unlock()
		select {
		case n.notify <- struct{}{}:
		default:
		}
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start node %d: %v", cfg.NodeID, err)
	}
	n.Membership = m
	t.Cleanup(func() {
		_ = m.Shutdown()
		if t.Failed() {
			t.Logf("node %d log:\n%s", cfg.NodeID, n.logs.String())
		}
	})
	return n
}

// waitEvent waits until n has delivered an event for member id in state
// want, examining id's events in order from where the last wait for id
// stopped; an event for id in a forbidden state first fails the test.
func (n *testNode) waitEvent(t *testing.T, id int32, want State, forbid ...State) Member {
	t.Helper()
	deadline := time.NewTimer(eventWait)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for i := n.cursor[id]; i < len(n.events); i++ {
			ev := n.events[i]
			if ev.Meta.NodeID != id {
				continue
			}
			n.cursor[id] = i + 1
			if ev.State == want {
				n.mu.Unlock()
				return ev
			}
			for _, f := range forbid {
				if ev.State == f {
					n.mu.Unlock()
					t.Fatalf("node %d saw member %d become %v while waiting for %v", n.cfg.NodeID, id, f, want)
				}
			}
		}
		n.cursor[id] = len(n.events)
		n.mu.Unlock()
		select {
		case <-n.notify:
		case <-deadline.C:
			t.Fatalf("node %d: member %d did not become %v within %v", n.cfg.NodeID, id, want, eventWait)
		}
	}
}

// waitMeta waits until n has delivered an event carrying want.
func (n *testNode) waitMeta(t *testing.T, want NodeMeta) {
	t.Helper()
	deadline := time.NewTimer(eventWait)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for _, ev := range n.events {
			if ev.Meta == want {
				n.mu.Unlock()
				return
			}
		}
		n.mu.Unlock()
		select {
		case <-n.notify:
		case <-deadline.C:
			t.Fatalf("node %d never saw meta %+v", n.cfg.NodeID, want)
		}
	}
}

func startGroup(t *testing.T, size int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, size)
	for i := range nodes {
		nodes[i] = startNode(t, testConfig(int32(i+1)))
	}
	for _, n := range nodes[1:] {
		if _, err := n.Join(nodes[0].Addr()); err != nil {
			t.Fatalf("node %d join: %v", n.cfg.NodeID, err)
		}
	}
	for _, n := range nodes {
		for _, other := range nodes {
			if other != n {
				n.waitEvent(t, other.cfg.NodeID, StateAlive)
			}
		}
	}
	return nodes
}

func TestGroupSeesMeta(t *testing.T) {
	nodes := startGroup(t, 3)
	for _, n := range nodes {
		ms := n.Members()
		if len(ms) != 3 {
			t.Fatalf("node %d sees %d members: %+v", n.cfg.NodeID, len(ms), ms)
		}
		for i, m := range ms {
			want := nodes[i]
			if m.Meta != want.cfg.Meta || m.Addr != want.Addr() {
				t.Errorf("node %d sees member %+v, want meta %+v at %s", n.cfg.NodeID, m, want.cfg.Meta, want.Addr())
			}
			if m.State != StateAlive && m.State != StateSuspect { // suspicion may flicker on a loaded machine
				t.Errorf("node %d sees member %d %v", n.cfg.NodeID, m.Meta.NodeID, m.State)
			}
		}
	}
}

// TestCrashSuspectThenDead shuts one member down without leaving; the
// others must report it suspect first, then dead, never left.
func TestCrashSuspectThenDead(t *testing.T) {
	nodes := startGroup(t, 3)
	crashed := nodes[2]
	start := time.Now()
	if err := crashed.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, n := range nodes[:2] {
		wg.Go(func() {
			n.waitEvent(t, 3, StateSuspect, StateDead, StateLeft)
			suspect := time.Since(start)
			n.waitEvent(t, 3, StateDead, StateLeft, StateAlive)
			t.Logf("node %d: member 3 suspect after %v, dead after %v", n.cfg.NodeID, suspect.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			if m, ok := n.Member(3); !ok || m.State != StateDead || m.Meta != crashed.cfg.Meta {
				t.Errorf("node %d: Member(3) = %+v, %v", n.cfg.NodeID, m, ok)
			}
		})
	}
	wg.Wait()
	if st := nodes[0].Stats(); st.Dead != 1 || st.Alive+st.Suspect != 2 {
		t.Fatalf("Stats = %+v, want 1 dead, 2 alive", st)
	}
}

func TestLeaveSeenAsLeft(t *testing.T) {
	nodes := startGroup(t, 3)
	leaver := nodes[1]
	if err := leaver.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := leaver.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{nodes[0], nodes[2]} {
		n.waitEvent(t, 2, StateLeft, StateDead)
		if m, _ := n.Member(2); m.State != StateLeft {
			t.Fatalf("node %d: Member(2) = %+v, want left", n.cfg.NodeID, m)
		}
	}
	if !strings.Contains(nodes[0].logs.String(), `to=left`) {
		t.Fatalf("node 1 did not log the leave:\n%s", nodes[0].logs.String())
	}
}

func TestSetMetaPropagates(t *testing.T) {
	nodes := startGroup(t, 2)
	meta := nodes[1].cfg.Meta
	meta.Incarnation++
	meta.Client = "127.0.0.1:1"
	if err := nodes[1].SetMeta(meta, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	nodes[0].waitMeta(t, meta)
}

func TestForeignClusterCannotJoin(t *testing.T) {
	a := startNode(t, testConfig(1))
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"different secret", func(c *Config) { c.Secret = []byte(strings.Repeat("0123456789abcdef", 4)) }},
		{"different cluster label", func(c *Config) { c.Cluster = "other-cluster" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(9)
			tc.mutate(&cfg)
			d := startNode(t, cfg)
			if n, err := d.Join(a.Addr()); err == nil {
				t.Fatalf("Join across secrets succeeded (%d answered)", n)
			}
			if ms := d.Members(); len(ms) != 1 || ms[0].Meta.NodeID != 9 {
				t.Fatalf("outsider sees %+v", ms)
			}
			if _, ok := a.Member(9); ok {
				t.Fatalf("member 1 admitted the outsider: %+v", a.Members())
			}
		})
	}
}

func TestJoinWithoutSeeds(t *testing.T) {
	n := startNode(t, testConfig(1))
	if k, err := n.Join(); err != nil || k != 0 {
		t.Fatalf("Join() with no seeds = %d, %v", k, err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	if _, err := n.Join("127.0.0.1:1"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Join after Shutdown = %v, want ErrShutdown", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(1)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no secret", func(c *Config) { c.Secret = nil }},
		{"meta id mismatch", func(c *Config) { c.Meta.NodeID = 2 }},
		{"bad bind", func(c *Config) { c.BindAddr = "localhost" }},
		{"probe timeout >= interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }},
		{"suspect misses 0", func(c *Config) { c.SuspectMisses = 0 }},
		{"meta too large", func(c *Config) { c.Meta.Rack = strings.Repeat("r", 300) }},
		{"advertise without port", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(1)
			tc.mutate(&c)
			if err := c.Validate(); err == nil {
				t.Fatalf("Validate accepted %s", tc.name)
			}
			if _, err := Start(c); err == nil {
				t.Fatalf("Start accepted %s", tc.name)
			}
		})
	}
	if err := (Config{NodeID: 1, Meta: NodeMeta{NodeID: 1}, BindAddr: ":0"}).Validate(); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Validate without secret = %v, want ErrNoSecret", err)
	}
}

func TestGossipKey(t *testing.T) {
	k := GossipKey(testSecret)
	if len(k) != 32 {
		t.Fatalf("key is %d bytes, want 32 (AES-256)", len(k))
	}
	if bytes.Equal(k, GossipKey(append([]byte(nil), testSecret[1:]...))) {
		t.Fatal("different secrets gave the same key")
	}
	if bytes.Contains(k, testSecret[:8]) {
		t.Fatal("key leaks secret bytes")
	}
}

// TestPingResultTransitions drives the suspicion rules directly.
func TestPingResultTransitions(t *testing.T) {
	var got []State
	m := &Membership{
		cfg:     Config{SuspectMisses: 2, MaxPendingEvents: 16, OnChange: func(Member) {}},
		log:     slog.New(slog.DiscardHandler),
		members: map[string]*entry{"node-2": {member: Member{Meta: NodeMeta{NodeID: 2}, State: StateAlive}}},
		wake:    make(chan struct{}, 1),
	}
	state := func() State { return m.members["node-2"].member.State }
	fail := errors.New("no ack")
	steps := []struct {
		err  error
		want State
	}{
		{fail, StateAlive}, // one miss is not suspicion
		{nil, StateAlive},  // an answer resets the count
		{fail, StateAlive},
		{fail, StateSuspect},
		{fail, StateSuspect},
		{nil, StateAlive},
	}
	for i, st := range steps {
		m.pingResult("node-2", st.err)
		if state() != st.want {
			t.Fatalf("step %d: state %v, want %v", i, state(), st.want)
		}
	}
	for _, ev := range m.queue {
		got = append(got, ev.State)
	}
	if fmt.Sprint(got) != "[suspect alive]" {
		t.Fatalf("events %v, want [suspect alive]", got)
	}
	m.members["node-2"].member.State = StateDead
	m.pingResult("node-2", nil)
	m.pingResult("node-2", fail)
	if state() != StateDead || len(m.queue) != 2 {
		t.Fatalf("pings changed memberlist's dead verdict: %v, %d events", state(), len(m.queue))
	}
	m.pingResult("node-7", nil) // unknown member: ignored
}
