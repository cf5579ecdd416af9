package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// kickReconcile asks the reconciler to re-apply the current image (the broker's own fencing state
// changed).
func (n *Node) kickReconcile() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
	n.changed.notify()
}

// reconcileLoop is the only goroutine that applies metadata images to the local replicas (besides
// Start, before it runs). It reads the subscription (every delta in order, or a Reset with the full
// image) and reconciles the registry against the newest image: replicas are opened, deleted and
// given their roles there.
func (n *Node) reconcileLoop(ctx context.Context) {
	orphansDone := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.sub.Ready():
		case <-n.kick:
		}
		img := n.mm.Image()
		if upd, ok := n.sub.TryNext(); ok {
			img = upd.Image // the full image is reconciled, so the deltas themselves are not needed
		}
		// Once the image holds this broker's current registration, it has every change committed
		// before it: partition directories it does not list are leftovers of deletes missed while down.
		orphans := !orphansDone && n.brokerEpoch.Load() != 0 && registrationApplied(img, n.cfg.NodeID, n.brokerEpoch.Load())
		if err := n.registry().apply(img, !n.mayLead(img), orphans); err != nil {
			n.lg.Error("applying metadata", "index", img.Index(), "err", err)
		} else if orphans {
			orphansDone = true
		}
		n.promoteLease(img.Index())
		n.metrics.observeImage(n, img)
		n.changed.notify()
	}
}

func registrationApplied(img *meta.Image, nodeID int32, epoch int64) bool {
	b, ok := img.Broker(nodeID)
	return ok && b.Epoch >= epoch
}

// pidAllocator hands out producer ids from blocks the controller allocates (AllocateProducerIDs)
// to this broker.
type pidAllocator struct {
	mu        sync.Mutex // held across an allocation, so concurrent callers share one new block
	next, end int64
}

func newPIDAllocator() *pidAllocator { return &pidAllocator{} }

// nextProducerID returns an unused producer id, allocating a new block through the controller when
// the current one is used up.
func (n *Node) nextProducerID(ctx context.Context) (int64, error) {
	a := n.pids
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.end {
		b, _, err := n.ctrl.allocateProducerIDs(ctx, n.brokerEpoch.Load())
		if err != nil {
			return 0, fmt.Errorf("producer id block: %w", mapMetaErr(err))
		}
		a.next, a.end = b.FirstID, b.FirstID+b.Count
	}
	id := a.next
	a.next++
	return id, nil
}
