package node

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog/controller"
	"github.com/sluice-io/sluice/wire"
)

// ErrWipedVoter reports a voter whose metadata log is empty although the cluster already knows its
// node id: its raft state (votes, log) is gone, and rejoining under the old id could break raft's
// safety. See the error text for the recovery.
var ErrWipedVoter = errors.New("node: wiped data directory of a known voter")

// checkNotWiped runs before a voter with an empty metadata log bootstraps: it asks the controller of
// an existing cluster (reached through any broker gossip sees alive) whether this node id is
// registered, with a heartbeat of broker epoch 0, which changes nothing: STALE_BROKER_EPOCH means a
// registration exists (the node was wiped), BROKER_ID_NOT_REGISTERED means a new node. When no
// controller answers within an election timeout there is no established cluster to ask (a fresh
// cluster forming) and the node bootstraps.
func (n *Node) checkNotWiped(ctx context.Context) error {
	if n.cp.gossip == nil {
		return nil
	}
	// The raft node does not exist yet: the controller is found through gossip only.
	dialer := &link.Dialer{Secret: n.cp.secret, SelfID: n.cfg.NodeID}
	dial := func(ctx context.Context, id int32) (net.Conn, error) {
		if id == n.cfg.NodeID {
			return nil, fmt.Errorf("node: a peer names this node (%d) as controller", id)
		}
		return n.dialPeer(ctx, dialer, id, link.PurposeControl)
	}
	cli := controller.NewClient(dial, n.gossipHint, controller.ClientConfig{Logger: n.lg,
		RetryBackoffMin: n.cfg.RaftTickInterval, RetryBackoffMax: 4 * n.cfg.RaftTickInterval})
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 20*n.cfg.RaftTickInterval) // an election timeout at most
	defer cancel()
	reply, err := cli.Heartbeat(pctx, controller.Heartbeat{NodeID: n.cfg.NodeID, BrokerEpoch: 0})
	switch {
	case reply.ErrorCode == wire.CodeStaleBrokerEpoch:
		return fmt.Errorf("%w: node %d has an empty metadata log in %s, but the cluster already has a registration for node %d. "+
			"Refusing to rejoin raft under the old identity (its votes and log are lost). Recovery: start this machine "+
			"with a NEW node id on an empty data dir, then run `sluice cluster replace-voter --dead %d --new <new id>`",
			ErrWipedVoter, n.cfg.NodeID, n.cp.raftDir, n.cfg.NodeID, n.cfg.NodeID)
	case reply.ErrorCode == wire.CodeBrokerIDNotRegistered:
		n.lg.Info("wiped-voter check: the cluster does not know this node id yet; bootstrapping")
	default:
		n.lg.Info("wiped-voter check: no controller answered; bootstrapping a new metadata log", "err", err)
	}
	return nil
}
