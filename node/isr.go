package node

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/sluice-io/sluice/follower"
	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/replica"
)

// alterPartitions batches the ISR changes of every partition this broker leads into AlterPartition
// commands (KIP-497: many partitions in one command), proposes them through the controller and,
// once the local image has applied the answer, tells each partition's core (ProposalDone), so a
// refused change is proposed again later. It is every replica's partition.ISRProposer.
type alterPartitions struct {
	n *Node

	mu      sync.Mutex
	pending map[*partition.Replica]replica.ISRChange
	kick    chan struct{}
}

func newAlterPartitions(n *Node) *alterPartitions {
	return &alterPartitions{n: n, pending: map[*partition.Replica]replica.ISRChange{}, kick: make(chan struct{}, 1)}
}

// Propose implements partition.ISRProposer.
func (a *alterPartitions) Propose(p *partition.Replica, ch replica.ISRChange) {
	a.mu.Lock()
	a.pending[p] = ch
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Changed implements partition.ISRProposer.
func (a *alterPartitions) Changed(oldSize, newSize int) {
	switch {
	case newSize < oldSize:
		a.n.metrics.isrShrinks.Inc()
	case newSize > oldSize:
		a.n.metrics.isrExpands.Inc()
	}
}

// run sends batches until ctx ends; one command is in flight at a time.
func (a *alterPartitions) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		}
		a.mu.Lock()
		batch := a.pending
		a.pending = map[*partition.Replica]replica.ISRChange{}
		a.mu.Unlock()
		if len(batch) > 0 {
			a.send(ctx, batch)
		}
	}
}

func (a *alterPartitions) send(ctx context.Context, batch map[*partition.Replica]replica.ISRChange) {
	n := a.n
	cmd := meta.AlterPartition{ProposerID: n.cfg.NodeID, ProposerEpoch: n.brokerEpoch.Load()}
	for p, ch := range batch {
		item := meta.AlterPartitionItem{TopicID: p.TopicID(), Partition: p.Index(), LeaderEpoch: ch.LeaderEpoch,
			PartitionEpoch: ch.PartitionEpoch}
		for _, r := range ch.ISR {
			be, ok := ch.BrokerEpochs[r]
			if !ok {
				be = -1
			}
			item.ISR = append(item.ISR, meta.ISRMember{ID: r, BrokerEpoch: be})
		}
		cmd.Partitions = append(cmd.Partitions, item)
	}
	pctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	index, rejected, err := n.ctrl.alterPartition(pctx, cmd)
	for _, r := range rejected {
		n.lg.Info("ISR change refused by the controller", "topic_id", meta.TopicID(r.TopicID).String(),
			"partition", r.Partition, "err", r.Err)
	}
	if err == nil {
		err = n.raft.WaitApplied(pctx, index)
	}
	if err != nil {
		n.lg.Warn("AlterPartition failed; the leaders will propose again", "partitions", len(batch), "err", err)
		// Give the controller a moment before the cores propose again (at their next tick).
		t := time.NewTimer(n.cfg.HeartbeatInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	// Partitions whose image still shows the proposed-at epoch had the change refused (or it was
	// lost with an error): their cores drop it.
	target := n.mm.Image().Index()
	_ = n.waitFor(pctx, func() bool { return n.registry().image().Index() >= target })
	for p, ch := range batch {
		p.ProposalDone(ch.PartitionEpoch)
	}
	n.metrics.isrProposals.Add(float64(len(batch)))
}

// replicationLoop ticks every led partition's core (ISR shrink by lag time) and checkpoints high
// watermarks, until ctx ends.
func (n *Node) replicationLoop(ctx context.Context) {
	tick := time.NewTicker(n.replicaTickInterval())
	defer tick.Stop()
	ckpt := time.NewTicker(n.cfg.HighWatermarkCheckpointInterval)
	defer ckpt.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, p := range n.registry().partitions() {
				if p.Role().Leader {
					p.Tick(now)
				}
			}
		case <-ckpt.C:
			for _, p := range n.registry().partitions() {
				if err := p.CheckpointHW(); err != nil {
					p.Logger().Warn("high watermark checkpoint", "err", err)
				}
			}
		}
	}
}

// replicaTickInterval is how often leaders check follower lag: a quarter of the lag time (Kafka
// checks every half), so a stuck follower leaves the ISR between 1 and 1.25 lag times.
func (n *Node) replicaTickInterval() time.Duration {
	return max(n.cfg.ReplicaLagTime/4, 10*time.Millisecond)
}

// newFetchers builds the replica fetcher manager: one fetcher per leader, over the internal link.
func (n *Node) newFetchers() *follower.Manager {
	dialer := &link.Dialer{Secret: n.cp.secret, SelfID: n.cfg.NodeID}
	return follower.NewManager(follower.Config{
		NodeID:      n.cfg.NodeID,
		BrokerEpoch: n.brokerEpoch.Load,
		Dial: func(ctx context.Context, id int32) (net.Conn, error) {
			return n.dialPeer(ctx, dialer, id, link.PurposeFetch)
		},
		MaxWait:             n.cfg.ReplicaFetchWait,
		PartitionMaxBytes:   n.cfg.ReplicaFetchMaxBytes,
		MaxBytes:            n.cfg.ReplicaFetchResponseMaxBytes,
		Backoff:             n.cfg.ReplicaFetchBackoff,
		ThrottleBytesPerSec: n.cfg.ReplicationThrottle,
		OnReceived:          func(b int) { n.metrics.replicaBytesIn.Add(float64(b)) },
		Logger:              n.lg,
	})
}

// internalFetchListener labels replica-fetch connections in connection metrics.
var internalFetchListener = &listener{name: "internal_fetch"}

// serveReplicaFetch serves a replica-fetch connection from peer (authenticated by the internal link)
// with the Kafka request loop: Fetch (and ApiVersions) only, records sent with sendfile.
func (n *Node) serveReplicaFetch(nc net.Conn, peer int32) {
	c := n.newConn(nc, internalFetchListener)
	c.replica = peer
	c.serve()
}
