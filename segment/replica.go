package segment

import "fmt"

// AppendReplica is the follower's append: the leader's bytes verbatim. The
// first batch's base offset must equal the log end offset and batches must
// be contiguous (ErrNonMonotonic otherwise). Leader epochs found in the
// batches extend the epoch cache. It returns once the durability policy is
// met; see AppendReplicaPending to wait separately.
func (l *Log) AppendReplica(batches []byte) (AppendInfo, error) {
	info, pending, err := l.AppendReplicaPending(batches)
	if err != nil {
		return info, err
	}
	return info, pending.Wait()
}

// AppendReplicaPending is AppendReplica without the wait for durability: it
// returns once the batches are written (and visible to readers bounded by
// the log end), with a Pending to wait on. A follower that appends one
// fetch response to many partitions waits on all their Pendings together,
// so their fdatasyncs run concurrently instead of one partition after
// another. On an error nothing is written.
func (l *Log) AppendReplicaPending(batches []byte) (AppendInfo, Pending, error) {
	hdrs, err := ValidateBatches(batches, 0)
	if err != nil {
		return AppendInfo{}, Pending{}, err
	}
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return AppendInfo{}, Pending{}, err
	}
	expect := l.leo.Load()
	latest, haveEpoch := l.epochs.latest()
	for i, h := range hdrs {
		if h.BaseOffset != expect {
			l.mu.Unlock()
			return AppendInfo{}, Pending{}, fmt.Errorf("%w: batch %d at offset %d, expected %d", ErrNonMonotonic, i, h.BaseOffset, expect)
		}
		if haveEpoch && h.PartitionLeaderEpoch < latest {
			l.mu.Unlock()
			return AppendInfo{}, Pending{}, fmt.Errorf("%w: batch %d has leader epoch %d below %d", ErrNonMonotonic, i, h.PartitionLeaderEpoch, latest)
		}
		if h.PartitionLeaderEpoch > latest || !haveEpoch {
			latest, haveEpoch = h.PartitionLeaderEpoch, true
		}
		expect = h.NextOffset()
	}
	changed := false
	for _, h := range hdrs {
		if h.PartitionLeaderEpoch >= 0 && l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset) {
			changed = true
		}
	}
	if changed {
		if err := l.persistEpochs(); err != nil {
			l.mu.Unlock()
			return AppendInfo{}, Pending{}, fmt.Errorf("segment: persist leader epochs: %w", err)
		}
	}
	info, seq, err := l.writeAppend(batches, hdrs) // releases l.mu
	if err != nil {
		return info, Pending{}, err
	}
	return info, Pending{l: l, seq: seq}, nil
}

// AdvanceLogStart moves the log start offset up to offset, as a follower
// does when the leader's log start moves (Kafka's
// maybeIncrementLogStartOffset): offset need not be a segment or batch
// boundary. Reads below the new start give ErrOffsetOutOfRange; a read at
// or above it returns the whole batch containing the offset. The new start
// is checkpointed, the non-active segments that lie wholly below it are
// retired as retention retires them (without waiting for views), and the
// epoch cache is trimmed from the start. It returns how many segments it
// deleted. An offset at or below the current start is a no-op; one above
// the log end returns ErrOffsetOutOfRange and changes nothing (the
// follower is behind the leader's start: TruncateFullyAndStartAt).
func (l *Log) AdvanceLogStart(offset int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	if offset <= l.ls.Load() {
		return 0, nil
	}
	if leo := l.leo.Load(); offset > leo {
		return 0, fmt.Errorf("segment: advance log start to %d past log end %d: %w", offset, leo, ErrOffsetOutOfRange)
	}
	list := l.segs.Load()
	n := 0
	for n < len(list.segs)-1 && list.segs[n].next.Load() <= offset {
		n++
	}
	n, err := l.advanceStartLocked(list, n, offset)
	if err != nil {
		return n, err
	}
	l.log.Info("log start advanced", "log_start_offset", offset, "segments", n)
	return n, nil
}

// advanceStartLocked makes newStart the log start and retires the first n
// segments of list, which lie wholly below it. The checkpoint goes first,
// so a restart honours the new start even if it finds the segments still
// there; the log start is stored before the list, so a reader that sees
// the new list sees the new start too. It returns how many segments it
// retired. Called with l.mu held.
func (l *Log) advanceStartLocked(list *segList, n int, newStart int64) (int, error) {
	if err := l.writeLogStart(newStart); err != nil {
		return 0, l.failLocked(err)
	}
	if newStart > l.ls.Load() {
		l.ls.Store(newStart)
	}
	if n > 0 {
		l.segs.Store(&segList{segs: append([]*segment(nil), list.segs[n:]...)})
		for _, s := range list.segs[:n] {
			l.retire(s)
		}
	}
	if l.epochs.truncateFromStart(newStart) {
		if err := l.persistEpochs(); err != nil {
			return n, l.failLocked(err)
		}
	}
	return n, nil
}
