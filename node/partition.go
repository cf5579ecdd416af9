package node

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/fetch"
	"github.com/sluice-io/sluice/internal/producerstate"
	"github.com/sluice-io/sluice/segment"
)

// role is a replica's role as the metadata image assigns it.
type role struct {
	leader bool  // this node leads the partition in epoch
	epoch  int32 // the partition's current leader epoch in the image
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
}

// currentRole returns the replica's role (follower in epoch -1 before the first assignment).
func (p *partition) currentRole() role {
	if r := p.role.Load(); r != nil {
		return *r
	}
	return role{epoch: -1}
}

// becomeLeader records (epoch -> log end offset) in the log's epoch cache, then accepts writes
// stamped with epoch. Holding mu orders it against in-flight appends of an older role.
func (p *partition) becomeLeader(epoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.log.AssignEpoch(epoch, p.log.LogEndOffset()); err != nil {
		return err
	}
	p.role.Store(&role{leader: true, epoch: epoch})
	// Without replication yet, every record a leader holds is committed.
	p.advanceHW(p.log.LogEndOffset())
	return nil
}

// becomeFollower stops accepting writes.
func (p *partition) becomeFollower(epoch int32) {
	p.mu.Lock()
	p.role.Store(&role{epoch: epoch})
	p.mu.Unlock()
	p.signal.Notify()
}

// openPartition opens (recovering) the log in dir and rebuilds the producer state from the newest
// snapshot plus a scan of the log after it.
func openPartition(dir, topic string, index int32, cfg topicConfig, lg *slog.Logger) (*partition, error) {
	l, err := segment.Open(dir, cfg.log)
	if err != nil {
		return nil, fmt.Errorf("open %s-%d: %w", topic, index, err)
	}
	p := &partition{topic: topic, index: index, log: l, cfg: cfg, lg: lg.With("topic", topic, "partition", index),
		lastSnapshot: -1}
	p.hw.Store(l.LogEndOffset())
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
	logStartOffset int64
	duplicate      bool // a retry of a retained batch: nothing was appended
}

// append validates the idempotent-producer sequence of one already validated client batch, appends it
// stamped with this node's leader epoch, updates the producer state and advances the high watermark.
// A duplicate of a retained batch is not appended; its original base offset is returned.
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
	meta := batchMeta(h)
	dup, err := p.producers.Check(meta)
	if err != nil {
		p.mu.Unlock()
		return appendResult{}, err
	}
	if dup != nil {
		p.mu.Unlock()
		// The original may still be waiting for its fdatasync; the retry is answered like it, once
		// it is committed (Kafka, likewise, answers a duplicate only when the HW passes it).
		if err := p.waitCommitted(dup.LastOffset + 1); err != nil {
			return appendResult{}, err
		}
		return appendResult{baseOffset: dup.FirstOffset, logStartOffset: p.log.LogStartOffset(), duplicate: true}, nil
	}
	info, pending, err := p.log.AppendCheckedPending(batch, r.epoch)
	if err != nil {
		p.mu.Unlock()
		return appendResult{}, err
	}
	meta.FirstOffset = info.FirstOffset
	meta.LastOffset = info.LastOffset
	p.producers.Update(meta)
	p.mu.Unlock()

	// Wait for durability outside the writer lock, so concurrent producers to this partition share one
	// fdatasync under durability=always (group commit). A later append's sync covers every earlier
	// write, so raising the HW to the largest end seen is safe.
	if err := pending.Wait(); err != nil {
		return appendResult{}, err
	}
	p.advanceHW(info.LastOffset + 1)
	return appendResult{baseOffset: info.FirstOffset, logStartOffset: p.log.LogStartOffset()}, nil
}

// advanceHW raises the high watermark to next if it is higher, and wakes long-polling fetches.
func (p *partition) advanceHW(next int64) {
	for {
		cur := p.hw.Load()
		if next <= cur {
			return
		}
		if p.hw.CompareAndSwap(cur, next) {
			p.signal.Notify()
			return
		}
	}
}

// waitCommitted waits until the high watermark reaches end. On a single node the HW trails the log end
// only while an fdatasync is in flight, so this wait is short; it is bounded all the same.
func (p *partition) waitCommitted(end int64) error {
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		ch := p.signal.Wait()
		if p.hw.Load() >= end {
			return nil
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
	serr := p.snapshotLocked()
	cerr := p.log.Close()
	p.signal.Notify()
	if cerr != nil {
		return cerr
	}
	return serr
}

// delete closes the log and removes its directory.
func (p *partition) delete() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	err := p.log.Delete()
	p.signal.Notify()
	return err
}
