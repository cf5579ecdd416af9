package node

import (
	"fmt"
	"time"

	"github.com/sluice-io/sluice/follower"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/wire"
)

// This file is the partition's replication shell: it feeds package replica's pure core with the
// log's offsets, fetches and time, and carries out what the core asks for (HW updates, produce
// completions, ISR proposals). The core is guarded by partition.rmu, which is never held across
// disk writes or network I/O.

// coreMetadata converts an image partition for the core.
func coreMetadata(ps meta.Partition) replica.Metadata {
	return replica.Metadata{Leader: ps.Leader, LeaderEpoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch,
		Replicas: ps.Replicas, ISR: ps.ISR}
}

// applyReadyLocked carries out a core Ready; rmu is held.
func (p *partition) applyReadyLocked(r replica.Ready) {
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
		p.isr.propose(p, *r.Propose)
	}
}

// appended tells the core the log's durable end after an append, and wakes follower long-polls.
func (p *partition) appended(end int64) {
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

// checkMinISR is the acks=all check before the append.
func (p *partition) checkMinISR(minISR int) error {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	return p.core.CheckMinISR(minISR)
}

// addWait registers an acks=all wait for the HW to reach end; the channel yields its outcome once.
func (p *partition) addWait(end int64, minISR int) (uint64, <-chan error) {
	ch := make(chan error, 1)
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.nextWait++
	id := p.nextWait
	p.waits[id] = ch
	p.applyReadyLocked(p.core.AddWait(id, end, minISR))
	return id, ch
}

// cancelWait drops a wait whose request timed out.
func (p *partition) cancelWait(id uint64) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.core.CancelWait(id)
	delete(p.waits, id)
}

// followerFetch applies a replica fetch on the leader and returns what to answer. It runs on every
// pass of a long-polled fetch, so it re-checks the fetch's leader epoch (currentEpoch, -1: not sent)
// against the core's each time: a fetch parked across a leadership change must not count.
func (p *partition) followerFetch(now time.Time, replicaID int32, brokerEpoch, offset int64, lastEpoch, currentEpoch int32) (replica.FetchDecision, error) {
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
	} else if err := checkLeaderEpoch(currentEpoch, md.LeaderEpoch); err != nil {
		return replica.FetchDecision{}, err
	}
	// Retention moves the log start under the core; tell it before it answers.
	p.core.LogStartAdvanced(p.log.LogStartOffset())
	d, r, err := p.core.OnFollowerFetch(now, f)
	p.applyReadyLocked(r)
	return d, err
}

// tick lets the core shrink the ISR of a led partition.
func (p *partition) tick(now time.Time) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.applyReadyLocked(p.core.Tick(now))
}

// followers returns the leader's view of its followers (nil on a follower).
func (p *partition) followers(now time.Time) []replica.FollowerStatus {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	return p.core.Followers(now)
}

// proposalDone tells the core the controller answered the ISR change proposed at partitionEpoch.
func (p *partition) proposalDone(partitionEpoch int32) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.core.ProposalDone(partitionEpoch)
}

// checkpointHW stores the high watermark in the partition directory (periodically and at close), so
// a restart does not jump it to the log end.
func (p *partition) checkpointHW() error {
	return p.log.CheckpointHighWatermark(p.hw.Load())
}

// The follower side: partition implements follower.Replica. Each call checks, under mu, that the
// replica still follows in the epoch the fetcher was given.

var _ follower.Replica = (*partition)(nil)

func (p *partition) followingLocked(leaderEpoch int32) error {
	r := p.currentRole()
	if p.closed || r.leader || r.epoch != leaderEpoch {
		return fmt.Errorf("%w: %s-%d (epoch %d, leader %v)", follower.ErrStale, p.topic, p.index, r.epoch, r.leader)
	}
	return nil
}

// FetchPosition implements follower.Replica.
func (p *partition) FetchPosition() (int64, int32) {
	leo := p.log.LogEndOffset()
	e, ok := p.log.LatestEpoch()
	if !ok {
		e = -1
	}
	return leo, e
}

// Diverged implements follower.Replica: truncate to where the leader's log and ours agree.
func (p *partition) Diverged(leaderEpoch int32, div wire.EpochEndOffset) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.followingLocked(leaderEpoch); err != nil {
		return err
	}
	local := replica.EpochEnd{Epoch: -1, EndOffset: -1}
	if div.Epoch >= 0 {
		e, end := p.log.EndOffsetForEpoch(div.Epoch)
		local = replica.EpochEnd{Epoch: e, EndOffset: end}
	}
	p.rmu.Lock()
	to := p.core.TruncationOffset(replica.EpochEnd{Epoch: div.Epoch, EndOffset: div.EndOffset}, local)
	p.rmu.Unlock()
	return p.truncateLocked(to, "diverging epoch", "leader_epoch", div.Epoch, "leader_end_offset", div.EndOffset)
}

// OutOfRange implements follower.Replica: the follower is below the leader's log start (or the
// leader's log is shorter and no epoch told where to cut): restart the log at the leader's start.
func (p *partition) OutOfRange(leaderEpoch int32, leaderLogStart int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.followingLocked(leaderEpoch); err != nil {
		return err
	}
	if leaderLogStart < 0 {
		return fmt.Errorf("%s-%d: offset out of range without a leader log start", p.topic, p.index)
	}
	if err := p.log.TruncateFullyAndStartAt(leaderLogStart); err != nil {
		return err
	}
	p.lg.Warn("follower log restarted at the leader's log start", "log_start_offset", leaderLogStart)
	return p.resetAfterTruncationLocked()
}

// truncateLocked cuts the log at to and rebuilds the state derived from it; mu is held.
func (p *partition) truncateLocked(to int64, why string, attrs ...any) error {
	if to >= p.log.LogEndOffset() {
		// Nothing to cut, but a stale epoch entry at the end must still go.
		return p.log.TruncateTo(to)
	}
	if err := p.log.TruncateTo(to); err != nil {
		return err
	}
	p.lg.Info("follower truncated", append([]any{"reason", why, "offset", p.log.LogEndOffset()}, attrs...)...)
	return p.resetAfterTruncationLocked()
}

// resetAfterTruncationLocked re-derives producer state and the core's offsets from the truncated log.
func (p *partition) resetAfterTruncationLocked() error {
	ps, err := p.rebuildProducers()
	if err != nil {
		return fmt.Errorf("%s-%d: producer state after truncation: %w", p.topic, p.index, err)
	}
	p.producers = ps
	p.rmu.Lock()
	p.core.Truncated(p.log.LogStartOffset(), p.log.LogEndOffset())
	p.hw.Store(p.core.HighWatermark())
	p.rmu.Unlock()
	p.durable.Store(p.log.LogEndOffset())
	return nil
}

// Append implements follower.Replica: the leader's batches, verbatim. The producer state follows
// the replicated batches, so a producer retrying after a failover is answered as a duplicate.
func (p *partition) Append(leaderEpoch int32, records []byte) (func() error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.followingLocked(leaderEpoch); err != nil {
		return nil, err
	}
	info, pending, err := p.log.AppendReplicaPending(records)
	if err != nil {
		return nil, err
	}
	for _, h := range info.Headers {
		if h.ProducerID >= 0 {
			p.producers.Update(batchMeta(h))
		}
	}
	end := info.LastOffset + 1
	return func() error {
		if err := pending.Wait(); err != nil {
			return err
		}
		p.rmu.Lock()
		defer p.rmu.Unlock()
		if err := p.coreFollowsLocked(leaderEpoch); err != nil {
			return err // a newer role (or fetcher) owns the core's offsets now
		}
		p.core.Appended(end)
		return nil
	}, nil
}

// Fetched implements follower.Replica: the follower's HW becomes min(leader's HW, own LEO), and its
// log start follows the leader's.
func (p *partition) Fetched(leaderEpoch int32, leaderHW, leaderLogStart int64) error {
	if r := p.currentRole(); r.leader || r.epoch != leaderEpoch {
		return fmt.Errorf("%w: %s-%d", follower.ErrStale, p.topic, p.index)
	}
	if leaderLogStart > p.log.LogStartOffset() && leaderLogStart <= p.log.LogEndOffset() {
		if _, err := p.log.AdvanceLogStart(leaderLogStart); err != nil {
			return err
		}
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if err := p.coreFollowsLocked(leaderEpoch); err != nil {
		return err
	}
	p.core.LogStartAdvanced(p.log.LogStartOffset())
	p.applyReadyLocked(p.core.FollowerFetched(leaderHW, leaderLogStart))
	return nil
}

// coreFollowsLocked checks, under rmu, that the core still follows in leaderEpoch.
func (p *partition) coreFollowsLocked(leaderEpoch int32) error {
	if role, md := p.core.Role(); role != replica.RoleFollower || md.LeaderEpoch != leaderEpoch {
		return fmt.Errorf("%w: %s-%d", follower.ErrStale, p.topic, p.index)
	}
	return nil
}
