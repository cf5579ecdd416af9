package node

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/fetch"
	"github.com/sluice-io/sluice/internal/producerstate"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// role is a replica's role as the metadata image assigns it.
type role struct {
	leader         bool  // this node leads the partition in epoch
	epoch          int32 // the partition's current leader epoch in the image
	partitionEpoch int32 // the partition epoch the role was last given with
}

// partition is one partition replica hosted by this node (leader or follower).
//
// Writers (Produce) serialise on mu, which guards the append path and the producer state. Readers
// (Fetch, ListOffsets, Metadata) never take mu: they load hw atomically and read the log, whose reads
// are lock-free with respect to appends.
type partition struct {
	topic string
	index int32
	log   *segment.Log
	cfg   topicConfig
	lg    *slog.Logger

	// hw is the high watermark: on a single node, the log end offset once an append has completed
	// under the topic's durability policy. Consumers read below it.
	hw atomic.Int64
	// signal is notified after hw advances (long-polling fetches wait on it).
	signal fetch.Signal

	snaps        *producerstate.Store
	snapMu       sync.Mutex // serialises snapshot file operations
	lastSnapshot int64      // guarded by snapMu; log end offset of the last snapshot written (-1 = none)

	// role is set by the metadata reconciler (under mu, after AssignEpoch) and read lock-free by
	// Fetch, ListOffsets and OffsetForLeaderEpoch; Produce re-checks it under mu.
	role atomic.Pointer[role]

	mu        sync.Mutex
	producers *producerstate.State // guarded by mu
	closed    bool                 // guarded by mu

	// Replication (replication.go). rmu guards the core and the acks=all waits; it is taken after mu
	// when both are held, and never across disk or network I/O.
	rmu      sync.Mutex
	core     *replica.Core
	waits    map[uint64]chan error
	nextWait uint64
	isr      isrProposer // where the core's ISR changes go; nil on a node without a controller
	id       topicID
	// durable is the log end the last completed append reached (durable under durability=always);
	// acks=1 duplicates wait for it.
	durable atomic.Int64
}

// currentRole returns the replica's role (follower in epoch -1 before the first assignment).
func (p *partition) currentRole() role {
	if r := p.role.Load(); r != nil {
		return *r
	}
	return role{epoch: -1}
}

// becomeLeader records (epoch -> log end offset) in the log's epoch cache, then accepts writes
// stamped with the epoch. Holding mu orders it against in-flight appends of an older role. The high
// watermark does not move: it advances once every ISR member has fetched in the new epoch.
func (p *partition) becomeLeader(now time.Time, ps meta.Partition) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.cfg.log.Durability == segment.DurabilityAlways {
		// A follower append may still wait for its fdatasync; the core must count only synced
		// data toward the high watermark.
		if err := p.log.Flush(); err != nil {
			return err
		}
	}
	leo := p.log.LogEndOffset()
	if err := p.log.AssignEpoch(ps.LeaderEpoch, leo); err != nil {
		return err
	}
	p.durable.Store(leo)
	p.rmu.Lock()
	p.applyReadyLocked(p.core.BecomeLeader(now, coreMetadata(ps), leo))
	p.rmu.Unlock()
	p.role.Store(&role{leader: true, epoch: ps.LeaderEpoch, partitionEpoch: ps.PartitionEpoch})
	p.signal.Notify()
	return nil
}

// becomeFollower stops accepting writes; acks=all waits fail with NOT_LEADER_OR_FOLLOWER.
func (p *partition) becomeFollower(ps meta.Partition) {
	p.mu.Lock()
	p.role.Store(&role{epoch: ps.LeaderEpoch, partitionEpoch: ps.PartitionEpoch})
	p.rmu.Lock()
	p.applyReadyLocked(p.core.BecomeFollower(coreMetadata(ps)))
	p.hw.Store(p.core.HighWatermark())
	p.rmu.Unlock()
	p.mu.Unlock()
	p.signal.Notify()
}

// updateISR applies an ISR (partition epoch) change in the same leader epoch.
func (p *partition) updateISR(ps meta.Partition) {
	p.rmu.Lock()
	if role, old := p.core.Role(); role == replica.RoleLeader && p.isr != nil {
		p.isr.changed(len(old.ISR), len(ps.ISR))
	}
	p.applyReadyLocked(p.core.Update(coreMetadata(ps)))
	p.rmu.Unlock()
	r := p.currentRole()
	r.partitionEpoch = ps.PartitionEpoch
	p.role.Store(&r)
}

// openPartition opens (recovering) the log in dir and rebuilds the producer state from the newest
// snapshot plus a scan of the log after it.
// self is this broker's id (the core's replica id) and rcfg the replication settings. The high
// watermark starts from the log's checkpoint, never from its end.
func openPartition(dir, topic string, index int32, cfg topicConfig, self int32, rcfg replica.Config, lg *slog.Logger) (*partition, error) {
	l, err := segment.Open(dir, cfg.log)
	if err != nil {
		return nil, fmt.Errorf("open %s-%d: %w", topic, index, err)
	}
	p := &partition{topic: topic, index: index, log: l, cfg: cfg, lg: lg.With("topic", topic, "partition", index),
		lastSnapshot: -1, waits: map[uint64]chan error{}}
	p.core = replica.New(self, rcfg, l.LogStartOffset(), l.LogEndOffset(), l.HighWatermarkCheckpoint())
	p.hw.Store(p.core.HighWatermark())
	p.durable.Store(l.LogEndOffset())
	ps, err := p.loadProducers()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open %s-%d: producer state: %w", topic, index, err)
	}
	p.producers = ps
	return p, nil
}

// batchMeta converts a batch header (with its assigned base offset) for the producer state.
func batchMeta(h segment.Header) producerstate.BatchMeta {
	return producerstate.NewBatchMeta(h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.BaseOffset,
		h.LastOffsetDelta, h.MaxTimestamp, h.Transactional())
}

// appendResult is what Produce reports for one partition.
type appendResult struct {
	baseOffset     int64
	end            int64 // last offset + 1
	logStartOffset int64
	duplicate      bool // a retry of a retained batch: nothing was appended
}

// append validates the idempotent-producer sequence of one already validated client batch, appends it
// stamped with this node's leader epoch and updates the producer state; the core hears the new end
// once it is durable. A duplicate of a retained batch is not appended: its original offsets are
// returned (dup set), and the caller waits for them like for a new append.
func (p *partition) append(batch segment.Checked) (appendResult, error) {
	h := batch.Header()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return appendResult{}, ErrClosed
	}
	r := p.currentRole()
	if !r.leader {
		p.mu.Unlock()
		return appendResult{}, fmt.Errorf("%w: %s-%d", ErrNotLeader, p.topic, p.index)
	}
	bm := batchMeta(h)
	dup, err := p.producers.Check(bm)
	if err != nil {
		p.mu.Unlock()
		return appendResult{}, err
	}
	if dup != nil {
		p.mu.Unlock()
		return appendResult{baseOffset: dup.FirstOffset, end: dup.LastOffset + 1, logStartOffset: p.log.LogStartOffset(),
			duplicate: true}, nil
	}
	info, pending, err := p.log.AppendCheckedPending(batch, r.epoch)
	if err != nil {
		p.mu.Unlock()
		return appendResult{}, err
	}
	bm.FirstOffset = info.FirstOffset
	bm.LastOffset = info.LastOffset
	p.producers.Update(bm)
	p.mu.Unlock()

	// Wait for durability outside the writer lock, so concurrent producers to this partition share one
	// fdatasync under durability=always (group commit). A later append's sync covers every earlier
	// write, so the core may take the largest end it hears.
	if err := pending.Wait(); err != nil {
		return appendResult{}, err
	}
	p.appended(info.LastOffset + 1)
	return appendResult{baseOffset: info.FirstOffset, end: info.LastOffset + 1, logStartOffset: p.log.LogStartOffset()}, nil
}

// waitDurable waits until the leader's durable log end reaches end (an acks=1 duplicate whose
// original may still wait for its fdatasync). Bounded all the same.
func (p *partition) waitDurable(end int64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := p.signal.Wait()
		if p.durable.Load() >= end {
			return nil
		}
		if !p.currentRole().leader {
			return fmt.Errorf("%w: %s-%d", ErrNotLeader, p.topic, p.index)
		}
		select {
		case <-ch:
		case <-deadline.C:
			return ErrRequestTimedOut
		}
	}
}

// highWatermark is the offset below which records are visible to consumers.
func (p *partition) highWatermark() int64 { return p.hw.Load() }

// epochAt returns the leader epoch of the batch holding offset, or -1 when unknown.
func (p *partition) epochAt(offset int64) int32 {
	epoch := int32(-1)
	for _, e := range p.log.EpochEntries() {
		if e.StartOffset > offset {
			break
		}
		epoch = e.Epoch
	}
	return epoch
}

// checkLeaderEpoch applies Kafka's fencing of a client-supplied current leader epoch (-1 = not sent)
// against the partition's epoch in the image.
func checkLeaderEpoch(current, leaderEpoch int32) error {
	switch {
	case current < 0 || current == leaderEpoch:
		return nil
	case current < leaderEpoch:
		return ErrFencedLeaderEpoch
	default:
		return ErrUnknownLeaderEpoch
	}
}

// close snapshots the producer state and closes the log. Idempotent.
func (p *partition) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.stopWaits()
	serr := p.snapshotLocked()
	herr := p.checkpointHW()
	cerr := p.log.Close()
	p.signal.Notify()
	return errors.Join(cerr, serr, herr)
}

// delete closes the log and removes its directory.
func (p *partition) delete() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stopWaits()
	err := p.log.Delete()
	p.signal.Notify()
	return err
}

// stopWaits fails every acks=all wait (the replica is closing or being deleted).
func (p *partition) stopWaits() {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.applyReadyLocked(p.core.BecomeFollower(replica.Metadata{Leader: -1}))
}
