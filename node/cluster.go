package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-io/sluice/follower"
	"github.com/sluice-io/sluice/internal/gossip"
	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/replica"
)

// clusterPlane is the node's metadata plane: the raft node and its image, the internal listener,
// gossip membership and the goroutines around them. It is created by Start and torn down by
// Shutdown (or the test hook that kills a node abruptly).
type clusterPlane struct {
	raftDir string
	secret  []byte

	cancel context.CancelFunc
	wg     sync.WaitGroup

	linkLn   *link.Listener
	gossip   *gossip.Membership
	fetchers *follower.Manager // replica fetchers; nil without an internal listener
}

// gossipIncarnation folds the 16-byte data-directory incarnation into gossip's uint64.
func gossipIncarnation(inc [16]byte) uint64 { return binary.BigEndian.Uint64(inc[:8]) }

// startCluster opens the metadata plane: identity, internal listener, gossip, the raft node and the
// goroutines that apply its image (reconciler) and keep this broker registered (brokerLoop).
func (n *Node) startCluster(ctx context.Context) error {
	cp := &clusterPlane{raftDir: filepath.Join(n.cfg.DataDir, "raft")}
	n.cp = cp
	if err := os.MkdirAll(cp.raftDir, 0o755); err != nil {
		return fmt.Errorf("node: raft dir: %w", err)
	}
	if err := checkMetadataPresent(n.cfg.DataDir, cp.raftDir); err != nil {
		return err
	}
	id, ok, err := raftlog.ReadIdentity(cp.raftDir)
	if err != nil {
		return err
	}
	if ok {
		if id.NodeID != n.cfg.NodeID {
			return fmt.Errorf("%w: data dir %s belongs to node %d, configured NodeID is %d",
				ErrIdentityConflict, n.cfg.DataDir, id.NodeID, n.cfg.NodeID)
		}
		if n.cfg.ClusterID != "" && id.ClusterID != n.cfg.ClusterID {
			return fmt.Errorf("%w: data dir %s belongs to cluster %q, configured ClusterID is %q",
				ErrIdentityConflict, n.cfg.DataDir, id.ClusterID, n.cfg.ClusterID)
		}
		n.setIdentity(id)
	}
	if n.cfg.Internal.Enabled() || n.cfg.Gossip.Enabled() {
		if cp.secret, err = link.LoadSecret(n.cfg.ClusterSecretFile); err != nil {
			return fmt.Errorf("node: cluster secret: %w", err)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	cp.cancel = cancel

	if n.cfg.Internal.Enabled() {
		lc := link.DefaultListenerConfig()
		lc.Secret, lc.SelfID, lc.Logger = cp.secret, n.cfg.NodeID, n.lg
		lc.Purposes = []link.Purpose{link.PurposeRaft, link.PurposeControl, link.PurposeFetch}
		if cp.linkLn, err = link.Listen(ctx, n.cfg.Internal.Addr, lc); err != nil {
			return fmt.Errorf("node: internal listener: %w", err)
		}
		n.addrs.Internal = cp.linkLn.Addr().String()
	}
	if n.cfg.Gossip.Enabled() {
		gc := gossip.LocalConfig()
		if !isLoopback(n.cfg.Gossip.Addr) {
			gc = gossip.DefaultConfig()
		}
		gc.NodeID, gc.BindAddr, gc.Secret, gc.Seeds, gc.Logger = n.cfg.NodeID, n.cfg.Gossip.Addr, cp.secret, n.cfg.Seeds, n.lg
		if n.cfg.Gossip.AdvertisedHost != "" || n.cfg.Gossip.AdvertisedPort != 0 {
			gc.AdvertiseAddr = advertised(n.cfg.Gossip, n.cfg.Gossip.Addr)
		}
		gc.Meta = n.gossipMeta()
		gc.OnChange = n.onMemberChange
		if cp.gossip, err = gossip.Start(gc); err != nil {
			return fmt.Errorf("node: gossip: %w", err)
		}
		n.addrs.Gossip = cp.gossip.Addr()
		if raftlog.StorageEmpty(cp.raftDir) && len(n.cfg.voters()) > 1 && slices.Contains(n.cfg.voters(), n.cfg.NodeID) {
			if len(n.cfg.Seeds) > 0 {
				_, _ = cp.gossip.Join(n.cfg.Seeds...) // best effort; joinLoop keeps trying
			}
			if err := n.checkNotWiped(ctx); err != nil {
				return err
			}
		}
		if len(n.cfg.Seeds) > 0 {
			cp.wg.Add(1)
			go func() {
				defer cp.wg.Done()
				n.joinLoop(rctx)
			}()
		}
	}

	rc := raftlog.DefaultConfig()
	rc.ID = uint64(n.cfg.NodeID)
	rc.DataDir = cp.raftDir
	for _, v := range n.cfg.voters() {
		rc.InitialVoters = append(rc.InitialVoters, uint64(v))
	}
	rc.Peers = n.peerAddr
	rc.TickInterval = n.cfg.RaftTickInterval
	rc.SnapshotEntries = n.cfg.MetadataSnapshotEntries
	rc.Transport.Secret = cp.secret
	rc.Logger = n.lg
	rc.OnLeaderChange = func(leader, term uint64) {
		n.metrics.raftLeaderChanged()
	}
	if len(cp.secret) == 0 {
		// A single voter never sends raft messages; the transport still wants a secret.
		rc.Transport.Secret = make([]byte, 32)
		_, _ = rand.Read(rc.Transport.Secret)
	}
	n.mm = raftlog.NewMetaMachine(0, n.lg)
	if n.raft, err = raftlog.NewNode(rc, n.mm); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.ctrl = n.newControlPlane()
	n.sub = n.mm.Subscribe()

	// Replication: the cores' settings, the AlterPartition batcher and (with an internal listener to
	// fetch over) the replica fetchers, set before the reconciler first applies an image.
	reg := n.registry()
	reg.repl = replica.Config{LagTime: n.cfg.ReplicaLagTime}
	alter := newAlterPartitions(n)
	reg.isr = alter
	n.offline = newOfflineReplicas(n)
	reg.onOffline = n.offline.add
	if cp.linkLn != nil {
		cp.fetchers = n.newFetchers()
		reg.fetchers = cp.fetchers
	}
	cp.wg.Add(3)
	go func() {
		defer cp.wg.Done()
		alter.run(rctx)
	}()
	go func() {
		defer cp.wg.Done()
		n.offline.run(rctx)
	}()
	go func() {
		defer cp.wg.Done()
		n.replicationLoop(rctx)
	}()

	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		if err := n.raft.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
			n.lg.Error("raft node stopped", "err", err)
		}
	}()
	if cp.linkLn != nil {
		cp.wg.Add(1)
		go func() {
			defer cp.wg.Done()
			n.internalAccept(rctx, cp.linkLn)
		}()
	}
	cp.wg.Add(2)
	go func() {
		defer cp.wg.Done()
		n.reconcileLoop(rctx)
	}()
	go func() {
		defer cp.wg.Done()
		n.brokerLoop(rctx)
	}()
	n.startController(rctx)
	return nil
}

// stopCluster stops every goroutine of the metadata plane and closes raft, gossip and the internal
// listener. graceful leaves the gossip cluster politely first.
func (n *Node) stopCluster(graceful bool) {
	cp := n.cp
	if cp == nil {
		return
	}
	if cp.gossip != nil {
		if graceful {
			_ = cp.gossip.Leave(time.Second)
		}
		_ = cp.gossip.Shutdown()
	}
	if cp.linkLn != nil {
		_ = cp.linkLn.Close()
	}
	if cp.fetchers != nil {
		cp.fetchers.Close()
	}
	if cp.cancel != nil {
		cp.cancel()
	}
	cp.wg.Wait()
	n.stopController()
	if n.sub != nil {
		n.sub.Close()
	}
	if n.raft != nil {
		_ = n.raft.Close()
	}
}

// internalAccept serves the internal listener: raft connections go to the raft node, controller
// RPC connections to the controller server.
func (n *Node) internalAccept(ctx context.Context, ln *link.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		acc, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { acc.Conn.Close() })
			defer stop()
			defer acc.Conn.Close()
			var err error
			switch acc.Purpose {
			case link.PurposeRaft:
				err = n.raft.Serve(acc.Conn, acc.PeerID)
			case link.PurposeControl:
				err = n.serveControl(acc.Conn, acc.PeerID)
			case link.PurposeFetch:
				n.serveReplicaFetch(acc.Conn, acc.PeerID)
			default:
				err = fmt.Errorf("unexpected purpose %v", acc.Purpose)
			}
			if err != nil && ctx.Err() == nil {
				n.lg.Debug("internal connection ended", "peer", acc.PeerID, "purpose", acc.Purpose.String(), "err", err)
			}
		}()
	}
}

// peerAddr resolves a peer's internal address: gossip meta of a member gossip sees alive first, then
// the image's registration, then gossip meta of a member in any state. (A restarted broker on a new
// address is refused by memberlist while its previous life is remembered dead; its registration
// carries the new address.)
func (n *Node) peerAddr(id uint64) (string, bool) {
	var m gossip.Member
	var inGossip bool
	if cp := n.cp; cp != nil && cp.gossip != nil {
		m, inGossip = cp.gossip.Member(int32(id))
		inGossip = inGossip && m.Meta.Internal != ""
		if inGossip && m.State == gossip.StateAlive {
			return m.Meta.Internal, true
		}
	}
	if n.mm != nil {
		if b, ok := n.mm.Image().Broker(int32(id)); ok && b.Addresses.Internal != "" {
			return b.Addresses.Internal, true
		}
	}
	if inGossip {
		return m.Meta.Internal, true
	}
	return "", false
}

// gossipMeta is what this broker publishes through memberlist.
func (n *Node) gossipMeta() gossip.NodeMeta {
	a := n.advertisedAddresses()
	id := n.identity()
	return gossip.NodeMeta{NodeID: n.cfg.NodeID, Internal: a.Internal, Client: a.Client, ClientPlain: a.ClientPlain,
		HTTP: a.HTTP, Rack: n.cfg.Rack, Incarnation: gossipIncarnation(id.Incarnation)}
}

// onMemberChange forwards gossip's death verdicts to the controller when this node is it. Gossip
// never changes a leader by itself: the controller fences after its own session check.
func (n *Node) onMemberChange(m gossip.Member) {
	n.lg.Info("gossip member", "member", m.Meta.NodeID, "state", m.State.String())
	if m.State == gossip.StateDead {
		n.memberDead(m.Meta.NodeID)
	}
}

// joinLoop joins the seeds, retrying until one answers.
func (n *Node) joinLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		if _, err := n.cp.gossip.Join(n.cfg.Seeds...); err == nil {
			return
		} else {
			n.lg.Debug("gossip join", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// advertisedAddresses are this broker's advertised endpoints for its registration.
func (n *Node) advertisedAddresses() meta.Addresses {
	var a meta.Addresses
	for _, l := range n.listeners {
		hp := net.JoinHostPort(l.advHost, strconv.Itoa(int(l.advPort)))
		if l.tls {
			a.Client = hp
		} else {
			a.ClientPlain = hp
		}
	}
	if n.addrs.Internal != "" {
		a.Internal = advertised(n.cfg.Internal, n.addrs.Internal)
	}
	if n.addrs.Gossip != "" {
		a.Gossip = advertised(n.cfg.Gossip, n.addrs.Gossip)
	}
	if n.addrs.HTTP != "" {
		a.HTTP = advertised(n.cfg.HTTP, n.addrs.HTTP)
	}
	return a
}

// advertised applies a listener's advertised host/port overrides to its bound address.
func advertised(l Listener, bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if l.AdvertisedHost != "" {
		host = l.AdvertisedHost
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	if l.AdvertisedPort != 0 {
		port = strconv.Itoa(l.AdvertisedPort)
	}
	return net.JoinHostPort(host, port)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// checkMetadataPresent refuses a data dir holding partition directories but no metadata log: the
// metadata was lost, and starting would treat every partition as an orphan.
func checkMetadataPresent(dataDir, raftDir string) error {
	if !raftlog.StorageEmpty(raftDir) {
		return nil
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("node: read data dir: %w", err)
	}
	for _, e := range entries {
		if _, _, ok := parsePartitionDir(e.Name()); ok && e.IsDir() {
			return fmt.Errorf("%w: data dir %s has partition directory %q but no metadata log (%s): refusing to start",
				ErrIdentityConflict, dataDir, e.Name(), raftDir)
		}
	}
	return nil
}
