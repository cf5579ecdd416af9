package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog/controller"
	"github.com/sluice-io/sluice/wire"
)

// ErrWipedVoter reports a voter whose metadata log is empty although the cluster already knows its
// node id: its raft state (votes, log) is gone, and rejoining under the old id could break raft's
// safety. See the error text for the recovery.
var ErrWipedVoter = errors.New("node: wiped data directory of a known voter")

// raftStorageEmpty reports whether the metadata log has never been written.
func raftStorageEmpty(raftDir string) bool {
	entries, err := os.ReadDir(filepath.Join(raftDir, "wal"))
	return err != nil || len(entries) == 0
}

// checkNotWiped runs before a voter with an empty metadata log bootstraps: it asks the controller of
// an existing cluster (reached through any broker gossip sees alive) whether this node id is
// registered, with a heartbeat of broker epoch 0, which changes nothing: STALE_BROKER_EPOCH means a
// registration exists (the node was wiped), BROKER_ID_NOT_REGISTERED means a new node. When no
// controller answers within an election timeout there is no established cluster to ask (a fresh
// cluster forming) and the node bootstraps.
func (n *Node) checkNotWiped(ctx context.Context) error {
	g := n.cp.gossip
	if g == nil {
		return nil
	}
	var turn int
	hint := func() int32 {
		alive := alivePeers(g, n.cfg.NodeID)
		if len(alive) == 0 {
			return 0
		}
		turn++
		return alive[turn%len(alive)]
	}
	dialer := &link.Dialer{Secret: n.cp.secret, SelfID: n.cfg.NodeID}
	dial := func(ctx context.Context, id int32) (net.Conn, error) {
		if id == n.cfg.NodeID {
			return nil, fmt.Errorf("node: a peer names this node (%d) as controller", id)
		}
		addr, ok := n.peerAddr(uint64(id))
		if !ok {
			return nil, fmt.Errorf("node: no address for node %d", id)
		}
		conn, _, err := dialer.Dial(ctx, addr, link.PurposeControl)
		return conn, err
	}
	cli := controller.NewClient(dial, hint, controller.ClientConfig{Logger: n.lg,
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
