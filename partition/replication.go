package partition

import (
	"fmt"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/replica"
)

// This file is the replica's replication shell: it feeds package replica's pure core with the
// log's offsets, fetches and time, and carries out what the core asks for (HW updates, produce
// completions, ISR proposals). The core is guarded by Replica.rmu, which is never held across
// disk writes or network I/O.

// ISRProposer takes a leader's ISR changes; package node batches them into AlterPartition commands
// and tells each replica the outcome (ProposalDone).
type ISRProposer interface {
	// Propose queues the core's ISR change of p. It must not block: p's core lock is held.
	Propose(p *Replica, ch replica.ISRChange)
	// Changed counts a committed ISR change of a partition this broker leads.
	Changed(oldSize, newSize int)
}

// coreMetadata converts an image partition for the core.
func coreMetadata(ps meta.Partition) replica.Metadata {
	return replica.Metadata{Leader: ps.Leader, LeaderEpoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch,
		Replicas: ps.Replicas, ISR: ps.ISR}
}

// applyReadyLocked carries out a core Ready; rmu is held.
func (p *Replica) applyReadyLocked(r replica.Ready) {
	if r.HWChanged {
		p.hw.Store(r.HighWatermark)
		p.signal.Notify()
	}
	for _, c := range r.Completed {
		if ch, ok := p.waits[c.ID]; ok {
			ch <- c.Err // buffered, one send per wait
			delete(p.waits, c.ID)
		}
	}
	if r.Propose != nil && p.isr != nil {
		p.isr.Propose(p, *r.Propose)
	}
}

// appended tells the core the log's durable end after an append, and wakes follower long-polls.
func (p *Replica) appended(end int64) {
	p.rmu.Lock()
	p.applyReadyLocked(p.core.Appended(end))
	p.rmu.Unlock()
	for {
		cur := p.durable.Load()
		if end <= cur || p.durable.CompareAndSwap(cur, end) {
			break
		}
	}
	p.signal.Notify()
}

// CheckMinISR is the acks=all check before the append (replica.ErrNotEnoughReplicas, or the core's
// ErrNotLeader).
func (p *Replica) CheckMinISR(minISR int) error {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	return p.core.CheckMinISR(minISR)
}

// AddWait registers an acks=all wait for the HW to reach end; the channel yields its outcome once.
// A wait whose request gives up must be dropped with CancelWait.
func (p *Replica) AddWait(end int64, minISR int) (uint64, <-chan error) {
	ch := make(chan error, 1)
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.nextWait++
	id := p.nextWait
	p.waits[id] = ch
	p.applyReadyLocked(p.core.AddWait(id, end, minISR))
	return id, ch
}

// CancelWait drops a wait whose request timed out.
func (p *Replica) CancelWait(id uint64) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.core.CancelWait(id)
	delete(p.waits, id)
}

// FollowerFetch applies a replica fetch on the leader and returns what to answer. It runs on every
// pass of a long-polled fetch, so it re-checks the fetch's leader epoch (currentEpoch, -1: not sent)
// against the core's each time: a fetch parked across a leadership change must not count.
func (p *Replica) FollowerFetch(now time.Time, replicaID int32, brokerEpoch, offset int64, lastEpoch, currentEpoch int32) (replica.FetchDecision, error) {
	f := replica.FollowerFetch{Replica: replicaID, BrokerEpoch: brokerEpoch, FetchOffset: offset,
		LastFetchedEpoch: lastEpoch, LogEnd: p.log.LogEndOffset()}
	if lastEpoch >= 0 {
		e, end := p.log.EndOffsetForEpoch(lastEpoch)
		f.LocalEnd = replica.EpochEnd{Epoch: e, EndOffset: end}
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if role, md := p.core.Role(); role != replica.RoleLeader {
		return replica.FetchDecision{}, fmt.Errorf("%w: %s-%d", ErrNotLeader, p.topic, p.index)
	} else if err := CheckLeaderEpoch(currentEpoch, md.LeaderEpoch); err != nil {
		return replica.FetchDecision{}, err
	}
	// Retention moves the log start under the core; tell it before it answers.
	p.core.LogStartAdvanced(p.log.LogStartOffset())
	d, r, err := p.core.OnFollowerFetch(now, f)
	p.applyReadyLocked(r)
	return d, err
}

// Tick lets the core shrink the ISR of a led partition.
func (p *Replica) Tick(now time.Time) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.applyReadyLocked(p.core.Tick(now))
}

// Followers returns the leader's view of its followers (nil on a follower).
func (p *Replica) Followers(now time.Time) []replica.FollowerStatus {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	return p.core.Followers(now)
}

// ProposalDone tells the core the controller answered the ISR change proposed at partitionEpoch.
func (p *Replica) ProposalDone(partitionEpoch int32) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.core.ProposalDone(partitionEpoch)
}

// CheckpointHW stores the high watermark in the partition directory (the broker calls it
// periodically; Close does too), so a restart does not jump it to the log end.
func (p *Replica) CheckpointHW() error {
	return p.log.CheckpointHighWatermark(p.hw.Load())
}
