package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/controller"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// controllerGlue wires package controller into the node: every node runs a controller.Server (it
// acts only while this node is the raft leader) and reaches the current controller through a
// controller.Client. The client dials peers over the internal link (purpose 'C') and reaches this
// node's own server through an in-memory pipe, so a single node without an internal listener uses
// the same path.
type controllerGlue struct {
	srv    *controller.Server
	cli    *controller.Client
	dialer *link.Dialer

	pipes sync.WaitGroup
}

func (n *Node) controllerConfig() controller.Config {
	cc := controller.DefaultConfig()
	cc.SessionTimeout = n.cfg.SessionTimeout
	cc.Lease = n.cfg.LeaderLease
	// With CheckQuorum a deposed controller steps down at most one election timeout (10 ticks)
	// after its successor was elected; twice that is the margin.
	cc.LeaseGrace = time.Duration(2*raftlog.DefaultConfig().ElectionTicks) * n.cfg.RaftTickInterval
	cc.PreferredLeaderInterval = n.cfg.PreferredLeaderInterval
	cc.TickInterval = min(cc.TickInterval, n.cfg.HeartbeatInterval)
	cc.Logger = n.lg
	return cc
}

func (n *Node) newControlPlane() controlPlane {
	g := &controllerGlue{srv: controller.NewServer(n.controllerConfig(), n.raft, n.mm)}
	if n.cp != nil && len(n.cp.secret) > 0 {
		g.dialer = &link.Dialer{Secret: n.cp.secret, SelfID: n.cfg.NodeID}
	}
	g.cli = controller.NewClient(n.dialControl, n.controllerHint,
		controller.ClientConfig{Logger: n.lg, RetryBackoffMax: n.cfg.HeartbeatInterval})
	n.ctl = g
	return rpcControl{n: n, g: g}
}

// dialControl opens a controller RPC connection to nodeID.
func (n *Node) dialControl(ctx context.Context, nodeID int32) (net.Conn, error) {
	g := n.ctl
	if nodeID == n.cfg.NodeID {
		client, server := net.Pipe()
		g.pipes.Add(1)
		go func() {
			defer g.pipes.Done()
			defer server.Close()
			_ = g.srv.Serve(server, n.cfg.NodeID)
		}()
		return client, nil
	}
	if g.dialer == nil {
		return nil, fmt.Errorf("%w: node %d is not reachable without an internal listener", ErrNotController, nodeID)
	}
	return n.dialPeer(ctx, g.dialer, nodeID, link.PurposeControl)
}

// dialPeer opens an authenticated internal link of purpose to another node, checking that the node
// answering is nodeID.
func (n *Node) dialPeer(ctx context.Context, dialer *link.Dialer, nodeID int32, purpose link.Purpose) (net.Conn, error) {
	addr, ok := n.peerAddr(uint64(nodeID))
	if !ok {
		return nil, fmt.Errorf("%w: no address known for node %d", ErrNotController, nodeID)
	}
	conn, peer, err := dialer.Dial(ctx, addr, purpose)
	if err != nil {
		return nil, err
	}
	if peer != nodeID {
		conn.Close()
		return nil, fmt.Errorf("node: %s answered as node %d, wanted %d", addr, peer, nodeID)
	}
	return conn, nil
}

// startController runs the controller server's loop (it acts while this node leads).
func (n *Node) startController(ctx context.Context) {
	g := n.ctl
	n.cp.wg.Add(1)
	go func() {
		defer n.cp.wg.Done()
		if err := g.srv.Run(ctx); err != nil {
			n.lg.Error("controller stopped", "err", err)
		}
	}()
}

// stopController closes the controller client and server (after the raft node stopped).
func (n *Node) stopController() {
	if g := n.ctl; g != nil {
		_ = g.cli.Close()
		_ = g.srv.Close()
		g.pipes.Wait()
	}
}

func (n *Node) serveControl(conn net.Conn, peerID int32) error {
	if n.ctl == nil {
		return errors.New("node: controller not started")
	}
	return n.ctl.srv.Serve(conn, peerID)
}

func (n *Node) memberDead(nodeID int32) {
	if n.ctl != nil {
		n.ctl.srv.MemberDead(nodeID)
	}
}

// rpcControl is the controlPlane over controller.Client.
type rpcControl struct {
	n *Node
	g *controllerGlue
}

func (r rpcControl) register(ctx context.Context, rb meta.RegisterBroker) (int64, error) {
	return r.g.cli.Register(ctx, rb)
}

func (r rpcControl) heartbeat(ctx context.Context, brokerEpoch int64, wantFence bool) (heartbeatReply, error) {
	reply, err := r.g.cli.Heartbeat(ctx, controller.Heartbeat{NodeID: r.n.cfg.NodeID, BrokerEpoch: brokerEpoch,
		WantFence: wantFence, MetadataOffset: r.n.raft.AppliedIndex()})
	out := heartbeatReply{errorCode: reply.ErrorCode, fenced: reply.Fenced, shouldShutdown: reply.ShouldShutdown,
		metadataOffset: reply.MetadataOffset, lease: reply.Lease}
	if reply.ErrorCode == wire.CodeBrokerIDNotRegistered {
		out.errorCode = wire.CodeStaleBrokerEpoch // register again either way
	}
	if err != nil && out.errorCode != 0 {
		return out, nil
	}
	return out, err
}

func (r rpcControl) controlledShutdown(ctx context.Context, brokerEpoch int64) error {
	return r.g.cli.ControlledShutdown(ctx, r.n.cfg.NodeID, brokerEpoch)
}

func (r rpcControl) propose(ctx context.Context, cmd meta.Command) (uint64, error) {
	return r.g.cli.Propose(ctx, cmd)
}

func (r rpcControl) allocateProducerIDs(ctx context.Context, brokerEpoch int64) (meta.ProducerIDBlock, uint64, error) {
	return r.g.cli.AllocateProducerIDs(ctx, r.n.cfg.NodeID, brokerEpoch)
}

func (r rpcControl) alterPartition(ctx context.Context, cmd meta.AlterPartition) (uint64, []meta.PartitionRejection, error) {
	return r.g.cli.AlterPartition(ctx, cmd)
}

func (r rpcControl) replicasOffline(ctx context.Context, brokerEpoch int64, parts []controller.PartitionRef) error {
	return r.g.cli.ReplicasOffline(ctx, r.n.cfg.NodeID, brokerEpoch, parts)
}
