package partition

import (
	"errors"
	"fmt"
	"io/fs"
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

// Config is what a replica is opened with. The broker gives every field; there are no defaults.
type Config struct {
	// Topic and Index name the partition (logs and errors).
	Topic string
	Index int32
	// TopicID is the topic's id, which ISR proposals carry.
	TopicID meta.TopicID
	// NodeID is this broker's id: the core's replica id.
	NodeID int32
	// Log configures the segment log: the topic's settings over the broker's defaults.
	Log segment.Config
	// Replication configures the core (replica.Config).
	Replication replica.Config
	// ISR takes the core's ISR changes; nil (no controller) drops them.
	ISR ISRProposer
	// OnOffline is told, once, that the replica's log failed (a disk error; see Offline). It must not
	// block. Nil: nobody is told.
	OnOffline func(*Replica)
	// Logger receives the replica's logs, bound with topic and partition; nil discards them.
	Logger *slog.Logger
}

// Role is a replica's role as the metadata image assigns it.
type Role struct {
	Leader         bool  // this node leads the partition in Epoch
	Epoch          int32 // the partition's current leader epoch in the image
	PartitionEpoch int32 // the partition epoch the role was last given with
}

// Replica is one partition replica hosted by this broker (leader or follower). Safe for concurrent
// use; the zero value is not usable (Open).
//
// Writers (Produce, and the follower side's appends and truncations) serialise on mu, which guards
// the append path and the producer state. Readers (Fetch, ListOffsets, Metadata) never take mu: they
// load the high watermark atomically and read the log, whose reads are lock-free with respect to
// appends.
type Replica struct {
	topic string
	index int32
	id    meta.TopicID
	log   *segment.Log
	cfg   segment.Config
	lg    *slog.Logger

	// hw is the high watermark as the core computes it. Consumers read below it.
	hw atomic.Int64
	// signal is notified after hw or the log end advances (long-polling fetches wait on it).
	signal fetch.Signal

	snaps        *producerstate.Store
	snapMu       sync.Mutex // serialises snapshot file operations
	lastSnapshot int64      // guarded by snapMu; log end offset of the last snapshot written (-1 = none)

	// role is set by the metadata reconciler (under mu, after AssignEpoch) and read lock-free by
	// Fetch, ListOffsets and OffsetForLeaderEpoch; Produce re-checks it under mu.
	role atomic.Pointer[Role]

	mu        sync.Mutex
	producers *producerstate.State // guarded by mu
	closed    bool                 // guarded by mu

	// Replication (replication.go). rmu guards the core and the acks=all waits; it is taken after mu
	// when both are held, and never across disk or network I/O.
	rmu      sync.Mutex
	core     *replica.Core
	waits    map[uint64]chan error
	nextWait uint64
	isr      ISRProposer // where the core's ISR changes go; nil on a node without a controller
	// durable is the log end the last completed append reached (durable under durability=always);
	// acks=1 duplicates wait for it.
	durable atomic.Int64

	// offline is set, for good, when the log failed (segment.ErrFailed: a write, sync or truncation
	// error left the files in an unknown state).
	offline   atomic.Bool
	onOffline func(*Replica)
}

// Open opens (recovering) the log in dir and rebuilds the producer state from the newest snapshot
// plus a scan of the log after it. The replica starts as a follower in epoch -1; its high watermark
// starts from the log's checkpoint, never from its end.
func Open(dir string, cfg Config) (*Replica, error) {
	l, err := segment.Open(dir, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("open %s-%d: %w", cfg.Topic, cfg.Index, err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	p := &Replica{topic: cfg.Topic, index: cfg.Index, id: cfg.TopicID, log: l, cfg: cfg.Log, isr: cfg.ISR, onOffline: cfg.OnOffline,
		lg: lg.With("topic", cfg.Topic, "partition", cfg.Index), lastSnapshot: -1, waits: map[uint64]chan error{}}
	p.core = replica.New(cfg.NodeID, cfg.Replication, l.LogStartOffset(), l.LogEndOffset(), l.HighWatermarkCheckpoint())
	p.hw.Store(p.core.HighWatermark())
	p.durable.Store(l.LogEndOffset())
	ps, err := p.loadProducers()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open %s-%d: producer state: %w", cfg.Topic, cfg.Index, err)
	}
	p.producers = ps
	return p, nil
}

// Topic is the partition's topic name.
func (p *Replica) Topic() string { return p.topic }

// Index is the partition's index in its topic.
func (p *Replica) Index() int32 { return p.index }

// TopicID is the topic's id.
func (p *Replica) TopicID() meta.TopicID { return p.id }

// Log is the partition's log, for reads (Read, offsets, epochs) and retention. Writes go through
// the replica.
func (p *Replica) Log() *segment.Log { return p.log }

// Logger is the replica's logger, bound with topic and partition.
func (p *Replica) Logger() *slog.Logger { return p.lg }

// Signal is notified after the high watermark or the log end advances, and when the role changes or
// the replica closes; long-polling fetches wait on it.
func (p *Replica) Signal() *fetch.Signal { return &p.signal }

// HighWatermark is the offset below which records are visible to consumers.
func (p *Replica) HighWatermark() int64 { return p.hw.Load() }

// Role returns the replica's role (follower in epoch -1 before the first assignment).
func (p *Replica) Role() Role {
	if r := p.role.Load(); r != nil {
		return *r
	}
	return Role{Epoch: -1}
}

// BecomeLeader records (epoch -> log end offset) in the log's epoch cache, then accepts writes
// stamped with the epoch. Holding mu orders it against in-flight appends of an older role. The high
// watermark does not move: it advances once every ISR member has fetched in the new epoch.
func (p *Replica) BecomeLeader(now time.Time, ps meta.Partition) (err error) {
	defer p.checkFailed(&err)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.offline.Load() {
		return ErrOffline
	}
	if p.cfg.Durability == segment.DurabilityAlways {
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
	p.role.Store(&Role{Leader: true, Epoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch})
	p.signal.Notify()
	return nil
}

// BecomeFollower stops accepting writes; acks=all waits fail with replica.ErrNotLeader.
func (p *Replica) BecomeFollower(ps meta.Partition) {
	p.mu.Lock()
	p.role.Store(&Role{Epoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch})
	p.rmu.Lock()
	p.applyReadyLocked(p.core.BecomeFollower(coreMetadata(ps)))
	p.hw.Store(p.core.HighWatermark())
	p.rmu.Unlock()
	p.mu.Unlock()
	p.signal.Notify()
}

// UpdateISR applies an ISR (partition epoch) change in the same leader epoch.
func (p *Replica) UpdateISR(ps meta.Partition) {
	p.rmu.Lock()
	if role, old := p.core.Role(); role == replica.RoleLeader && p.isr != nil {
		p.isr.Changed(len(old.ISR), len(ps.ISR))
	}
	p.applyReadyLocked(p.core.Update(coreMetadata(ps)))
	p.rmu.Unlock()
	r := p.Role()
	r.PartitionEpoch = ps.PartitionEpoch
	p.role.Store(&r)
}

// batchMeta converts a batch header (with its assigned base offset) for the producer state.
func batchMeta(h segment.Header) producerstate.BatchMeta {
	return producerstate.NewBatchMeta(h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.BaseOffset,
		h.LastOffsetDelta, h.MaxTimestamp, h.Transactional())
}

// ProduceResult is what Produce reports for one partition.
type ProduceResult struct {
	BaseOffset     int64
	End            int64 // last offset + 1
	LogStartOffset int64
	Duplicate      bool // a retry of a retained batch: nothing was appended
}

// Produce validates the idempotent-producer sequence of one already validated client batch, appends
// it stamped with this replica's leader epoch and updates the producer state; the core hears the new
// end once it is durable. A duplicate of a retained batch is not appended: its original offsets are
// returned (Duplicate set), and the caller waits for them like for a new append. Produce returns
// once the append is durable under the log's durability policy.
func (p *Replica) Produce(batch segment.Checked) (_ ProduceResult, err error) {
	defer p.checkFailed(&err)
	h := batch.Header()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ProduceResult{}, ErrClosed
	}
	r := p.Role()
	if !r.Leader {
		p.mu.Unlock()
		return ProduceResult{}, fmt.Errorf("%w: %s-%d", ErrNotLeader, p.topic, p.index)
	}
	bm := batchMeta(h)
	dup, err := p.producers.Check(bm)
	if err != nil {
		p.mu.Unlock()
		return ProduceResult{}, err
	}
	if dup != nil {
		p.mu.Unlock()
		return ProduceResult{BaseOffset: dup.FirstOffset, End: dup.LastOffset + 1, LogStartOffset: p.log.LogStartOffset(),
			Duplicate: true}, nil
	}
	info, pending, err := p.log.AppendCheckedPending(batch, r.Epoch)
	if err != nil {
		p.mu.Unlock()
		return ProduceResult{}, err
	}
	bm.FirstOffset = info.FirstOffset
	bm.LastOffset = info.LastOffset
	p.producers.Update(bm)
	p.mu.Unlock()

	// Wait for durability outside the writer lock, so concurrent producers to this partition share one
	// fdatasync under durability=always (group commit). A later append's sync covers every earlier
	// write, so the core may take the largest end it hears.
	if err := pending.Wait(); err != nil {
		return ProduceResult{}, err
	}
	p.appended(info.LastOffset + 1)
	return ProduceResult{BaseOffset: info.FirstOffset, End: info.LastOffset + 1, LogStartOffset: p.log.LogStartOffset()}, nil
}

// WaitDurable waits until the leader's durable log end reaches end (an acks=1 duplicate whose
// original may still wait for its fdatasync). Bounded by timeout (ErrRequestTimedOut); ErrNotLeader
// once the replica stops leading.
func (p *Replica) WaitDurable(end int64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := p.signal.Wait()
		if p.durable.Load() >= end {
			return nil
		}
		if !p.Role().Leader {
			return fmt.Errorf("%w: %s-%d", ErrNotLeader, p.topic, p.index)
		}
		select {
		case <-ch:
		case <-deadline.C:
			return ErrRequestTimedOut
		}
	}
}

// Close snapshots the producer state, checkpoints the high watermark and closes the log; acks=all
// waits fail. Idempotent.
func (p *Replica) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.stopWaits()
	serr := p.snapshotLocked()
	herr := p.CheckpointHW()
	cerr := p.log.Close()
	p.signal.Notify()
	return errors.Join(cerr, serr, herr)
}

// Delete closes the log and removes its directory.
func (p *Replica) Delete() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stopWaits()
	err := p.log.Delete()
	p.signal.Notify()
	return err
}

// stopWaits fails every acks=all wait (the replica is closing or being deleted).
func (p *Replica) stopWaits() {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.applyReadyLocked(p.core.BecomeFollower(replica.Metadata{Leader: -1}))
}

// Offline reports whether the replica's log failed. An offline replica neither leads nor follows
// until the broker restarts (which reopens and recovers the log): the broker reports it to the
// controller, which moves its leadership away and keeps it out of the ISR.
func (p *Replica) Offline() bool { return p.offline.Load() }

// checkFailed takes the replica offline when *err says its log failed: the log refuses writes
// (segment.ErrFailed), or a file operation failed (an *fs.PathError: EIO, ENOSPC, a vanished file),
// which Kafka likewise treats as a failed log directory. Callers defer it before taking mu, so it
// runs with no lock held.
func (p *Replica) checkFailed(err *error) {
	var pathErr *fs.PathError
	if *err == nil || !(errors.Is(*err, segment.ErrFailed) || errors.As(*err, &pathErr)) || !p.offline.CompareAndSwap(false, true) {
		return
	}
	p.lg.Error("replica offline: its log failed; leadership and ISR membership go to other replicas", "err", *err)
	r := p.Role()
	r.Leader = false
	p.role.Store(&r)
	p.stopWaits()
	p.signal.Notify()
	if p.onOffline != nil {
		p.onOffline(p)
	}
}
