package partition

import (
	"fmt"

	"github.com/sluice-io/sluice/follower"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/wire"
)

// The follower side: Replica implements follower.Replica. Each call checks, under mu, that the
// replica still follows in the epoch the fetcher was given.

var _ follower.Replica = (*Replica)(nil)

func (p *Replica) followingLocked(leaderEpoch int32) error {
	r := p.Role()
	if p.closed || r.Leader || r.Epoch != leaderEpoch {
		return fmt.Errorf("%w: %s-%d (epoch %d, leader %v)", follower.ErrStale, p.topic, p.index, r.Epoch, r.Leader)
	}
	return nil
}

// FetchPosition implements follower.Replica.
func (p *Replica) FetchPosition() (int64, int32) {
	leo := p.log.LogEndOffset()
	e, ok := p.log.LatestEpoch()
	if !ok {
		e = -1
	}
	return leo, e
}

// Diverged implements follower.Replica: truncate to where the leader's log and ours agree.
func (p *Replica) Diverged(leaderEpoch int32, div wire.EpochEndOffset) (err error) {
	defer p.checkFailed(&err) // runs after the unlock below
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
func (p *Replica) OutOfRange(leaderEpoch int32, leaderLogStart int64) (err error) {
	defer p.checkFailed(&err)
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
func (p *Replica) truncateLocked(to int64, why string, attrs ...any) error {
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
func (p *Replica) resetAfterTruncationLocked() error {
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
func (p *Replica) Append(leaderEpoch int32, records []byte) (_ func() error, err error) {
	defer p.checkFailed(&err)
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
			p.checkFailed(&err)
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
func (p *Replica) Fetched(leaderEpoch int32, leaderHW, leaderLogStart int64) (err error) {
	defer p.checkFailed(&err)
	if r := p.Role(); r.Leader || r.Epoch != leaderEpoch {
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
func (p *Replica) coreFollowsLocked(leaderEpoch int32) error {
	if role, md := p.core.Role(); role != replica.RoleFollower || md.LeaderEpoch != leaderEpoch {
		return fmt.Errorf("%w: %s-%d", follower.ErrStale, p.topic, p.index)
	}
	return nil
}
