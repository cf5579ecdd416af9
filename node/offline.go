package node

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/raftlog/controller"
)

// offlineReplicas reports replicas whose logs failed (a disk error) to the controller, which moves
// their leadership to another ISR member and keeps them out of ISRs while this registration lasts.
// A failed log affects its partition only: the broker keeps serving the others. The report is
// repeated until the controller commits it, and again after every new registration (the
// controller forgets offline replicas with the old registration, and the log stays failed until
// the process restarts and recovers it).
type offlineReplicas struct {
	n *Node

	mu       sync.Mutex
	replicas map[*partition.Replica]struct{}
	reported int64 // broker epoch of the last committed report; 0: none
	kick     chan struct{}
}

func newOfflineReplicas(n *Node) *offlineReplicas {
	return &offlineReplicas{n: n, replicas: map[*partition.Replica]struct{}{}, kick: make(chan struct{}, 1)}
}

// add is partition.Config.OnOffline: it must not block.
func (o *offlineReplicas) add(p *partition.Replica) {
	o.mu.Lock()
	o.replicas[p] = struct{}{}
	o.reported = 0
	o.mu.Unlock()
	o.n.kickReconcile() // stop fetching or leading it at once
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// count is the number of offline replicas (a metric).
func (o *offlineReplicas) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.replicas)
}

// list names the offline replicas (for /v1/cluster).
func (o *offlineReplicas) list() []ClusterPartitionRef {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]ClusterPartitionRef, 0, len(o.replicas))
	for p := range o.replicas {
		out = append(out, ClusterPartitionRef{Topic: p.Topic(), Partition: p.Index()})
	}
	return out
}

// run reports until ctx ends: at once after a failure, and every heartbeat interval while the
// report is not committed for the current registration.
func (o *offlineReplicas) run(ctx context.Context) {
	t := time.NewTicker(o.n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.kick:
		case <-t.C:
		}
		epoch := o.n.brokerEpoch.Load()
		o.mu.Lock()
		due := len(o.replicas) > 0 && epoch != 0 && o.reported != epoch
		refs := make([]controller.PartitionRef, 0, len(o.replicas))
		for p := range o.replicas {
			refs = append(refs, controller.PartitionRef{TopicID: p.TopicID(), Partition: p.Index()})
		}
		o.mu.Unlock()
		if !due {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, adminTimeout)
		err := o.n.ctrl.replicasOffline(rctx, epoch, refs)
		cancel()
		if err != nil {
			o.n.lg.Warn("reporting offline replicas to the controller failed; retrying", "replicas", len(refs), "err", err)
			continue
		}
		o.n.lg.Warn("offline replicas reported to the controller", "replicas", len(refs), "broker_epoch", epoch)
		o.mu.Lock()
		if len(o.replicas) == len(refs) {
			o.reported = epoch
		}
		o.mu.Unlock()
	}
}
