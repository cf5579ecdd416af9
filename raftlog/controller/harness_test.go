package controller

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/internal/testutil"
	"github.com/sluice-io/sluice/raftlog"
)

// Three real raftlog.Nodes on loopback TCP, each with a link.Listener that
// hands raft connections to the node and control connections to its
// controller Server, and a Client dialing as that node.

type member struct {
	id     int32
	node   *raftlog.Node
	mm     *raftlog.MetaMachine
	srv    *Server
	client *Client
	ln     *link.Listener
	cancel context.CancelFunc
	done   sync.WaitGroup
}

type cluster struct {
	t      *testing.T
	secret []byte
	root   string
	cfg    Config
	logs   *testutil.Buffer
	logger *slog.Logger

	mu      sync.Mutex
	addrs   map[int32]string
	members map[int32]*member
}

func newCluster(t *testing.T, cfg Config) *cluster {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(rand.Uint32())
	}
	c := &cluster{t: t, secret: []byte(hex.EncodeToString(key)), root: t.TempDir(), cfg: cfg, logs: &testutil.Buffer{},
		addrs: map[int32]string{}, members: map[int32]*member{}}
	c.logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.cfg.Logger = c.logger
	t.Cleanup(func() {
		for _, id := range []int32{1, 2, 3} {
			c.kill(id)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", c.logs.String())
		}
	})
	for _, id := range []int32{1, 2, 3} {
		c.start(id)
	}
	return c
}

func (c *cluster) addr(id int32) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[id]
	return a, ok
}

func (c *cluster) member(id int32) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[id]
	if m == nil {
		c.t.Fatalf("node %d is not running", id)
	}
	return m
}

func (c *cluster) running() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*member
	for _, id := range []int32{1, 2, 3} {
		if m := c.members[id]; m != nil {
			out = append(out, m)
		}
	}
	return out
}

// dialer returns a Client dial function that connects as node self.
func (c *cluster) dialer(self int32) func(ctx context.Context, id int32) (net.Conn, error) {
	return func(ctx context.Context, id int32) (net.Conn, error) {
		a, ok := c.addr(id)
		if !ok {
			return nil, fmt.Errorf("node %d has no address", id)
		}
		conn, peer, err := link.Dial(ctx, a, c.secret, self, link.PurposeControl)
		if err != nil {
			return nil, err
		}
		if peer != id {
			_ = conn.Close()
			return nil, fmt.Errorf("dialed %d, reached %d", id, peer)
		}
		return conn, nil
	}
}

func (c *cluster) start(id int32) {
	t := c.t
	lcfg := link.DefaultListenerConfig()
	lcfg.Secret, lcfg.SelfID, lcfg.Logger = c.secret, id, c.logger
	ln, err := link.Listen(context.Background(), "127.0.0.1:0", lcfg)
	if err != nil {
		t.Fatal(err)
	}
	ncfg := raftlog.DefaultConfig()
	ncfg.ID = uint64(id)
	ncfg.DataDir = filepath.Join(c.root, fmt.Sprintf("n%d", id))
	ncfg.InitialVoters = []uint64{1, 2, 3}
	ncfg.TickInterval = 50 * time.Millisecond
	ncfg.Peers = func(p uint64) (string, bool) { return c.addr(int32(p)) }
	ncfg.Transport.Secret = c.secret
	ncfg.Logger = c.logger
	mm := raftlog.NewMetaMachine(0, c.logger)
	node, err := raftlog.NewNode(ncfg, mm)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{id: id, node: node, mm: mm, srv: NewServer(c.cfg, node, mm), ln: ln, cancel: cancel}
	m.client = NewClient(c.dialer(id), func() int32 { return int32(node.LeaderID()) },
		ClientConfig{RetryBackoffMin: 10 * time.Millisecond, RetryBackoffMax: 100 * time.Millisecond, Logger: c.logger})
	m.done.Add(3)
	go func() {
		defer m.done.Done()
		if err := node.Run(ctx); err != nil {
			t.Errorf("node %d: Run: %v", id, err)
		}
	}()
	go func() {
		defer m.done.Done()
		if err := m.srv.Run(ctx); err != nil {
			t.Errorf("server %d: Run: %v", id, err)
		}
	}()
	go func() {
		defer m.done.Done()
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			switch a.Purpose {
			case link.PurposeRaft:
				go func() { _ = node.Serve(a.Conn, a.PeerID) }()
			case link.PurposeControl:
				go func() { _ = m.srv.Serve(a.Conn, a.PeerID) }()
			default:
				_ = a.Conn.Close()
			}
		}
	}()
	c.mu.Lock()
	c.addrs[id] = ln.Addr().String()
	c.members[id] = m
	c.mu.Unlock()
}

// kill stops a node abruptly (its sockets just close).
func (c *cluster) kill(id int32) {
	c.mu.Lock()
	m := c.members[id]
	delete(c.members, id)
	c.mu.Unlock()
	if m == nil {
		return
	}
	m.cancel()
	_ = m.ln.Close()
	_ = m.srv.Close()
	_ = m.client.Close()
	m.done.Wait()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// leader waits until the running nodes agree on a leader and its
// controller is active, and returns it.
func (c *cluster) leader() *member {
	c.t.Helper()
	var lead *member
	waitFor(c.t, 15*time.Second, "an active controller", func() bool {
		lead = nil
		var id uint64
		for _, m := range c.running() {
			l := m.node.LeaderID()
			if l == 0 || (id != 0 && l != id) {
				return false
			}
			id = l
		}
		c.mu.Lock()
		lead = c.members[int32(id)]
		c.mu.Unlock()
		if lead == nil {
			return false
		}
		ok, _ := lead.srv.active()
		return ok
	})
	return lead
}

// heartbeater sends a broker's heartbeats every interval until stopped.
type heartbeater struct {
	stop chan struct{}
	done chan struct{}
}

func (c *cluster) heartbeat(m *member, epoch int64, every time.Duration) *heartbeater {
	h := &heartbeater{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = m.client.Heartbeat(ctx, Heartbeat{NodeID: m.id, BrokerEpoch: epoch, MetadataOffset: m.node.AppliedIndex()})
			cancel()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heartbeater) halt() {
	close(h.stop)
	<-h.done
}
