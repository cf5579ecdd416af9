package replica

import "fmt"

// This file is the simulator's storage model: one replica's log as the
// broker's segment package keeps it, reduced to what replication observes.
// Records are identified by (leader epoch, payload id) and the log start is
// always 0 (no retention), so offset i is recs[i].

// rec is one record: the leader epoch that wrote it and a payload id unique
// across the schedule (so "byte-equal" means equal recs).
type rec struct {
	epoch   int32
	payload uint64
}

// epochEntry is a leader-epoch cache entry: epoch wrote its first record at start.
type epochEntry struct {
	epoch int32
	start int64
}

// simLog is one replica's disk. The epoch cache and the HW checkpoint are
// written synchronously (as segment persists them); the records are durable
// only below flushed, so a power loss under durability never/interval cuts
// the log back to flushed.
type simLog struct {
	recs    []rec
	epochs  []epochEntry // strictly increasing in epoch and start
	flushed int64        // durable prefix of recs
	hwCkpt  int64        // last high-watermark checkpoint
}

func (l *simLog) leo() int64 { return int64(len(l.recs)) }

// latestEpoch is the cache's latest epoch (Kafka's log.latestEpoch, what a
// follower sends as LastFetchedEpoch); -1 when the cache is empty.
func (l *simLog) latestEpoch() int32 {
	if len(l.epochs) == 0 {
		return -1
	}
	return l.epochs[len(l.epochs)-1].epoch
}

// assign is segment's epochCache.assign: record that epoch starts at start,
// dropping entries with an epoch >= epoch or a start >= start.
func (l *simLog) assign(epoch int32, start int64) {
	if n := len(l.epochs); n > 0 {
		last := l.epochs[n-1]
		if last.epoch == epoch && last.start <= start {
			return
		}
	}
	keep := l.epochs[:0]
	for _, e := range l.epochs {
		if e.epoch < epoch && e.start < start {
			keep = append(keep, e)
		}
	}
	l.epochs = append(keep, epochEntry{epoch, start})
}

// truncateEpochsFromEnd removes entries starting at or after end.
func (l *simLog) truncateEpochsFromEnd(end int64) {
	n := len(l.epochs)
	for n > 0 && l.epochs[n-1].start >= end {
		n--
	}
	l.epochs = l.epochs[:n]
}

// endOffsetFor is segment's endOffsetFor (OffsetForLeaderEpoch): for the
// latest epoch the LEO; for an older one the start of the next higher epoch,
// paired with the largest known epoch <= the request (the request itself
// when it predates every entry); (-1, -1) above every epoch or when empty.
func (l *simLog) endOffsetFor(epoch int32) EpochEnd {
	n := len(l.epochs)
	if epoch < 0 || n == 0 {
		return EpochEnd{-1, -1}
	}
	if l.epochs[n-1].epoch == epoch {
		return EpochEnd{epoch, l.leo()}
	}
	for i, e := range l.epochs {
		if e.epoch > epoch {
			if i == 0 {
				return EpochEnd{epoch, e.start}
			}
			return EpochEnd{l.epochs[i-1].epoch, e.start}
		}
	}
	return EpochEnd{-1, -1}
}

// appendLeader appends records of the leader's epoch (segment's Append
// stamps the epoch and assigns it at the batch's first offset).
func (l *simLog) appendLeader(epoch int32, payloads []uint64) {
	l.assign(epoch, l.leo())
	for _, p := range payloads {
		l.recs = append(l.recs, rec{epoch, p})
	}
}

// appendReplica is segment's AppendReplica: the leader's records verbatim,
// refused (nothing written) when an epoch goes below the cache's latest.
func (l *simLog) appendReplica(rs []rec) error {
	latest := l.latestEpoch()
	for i, r := range rs {
		if r.epoch < latest {
			return fmt.Errorf("record %d at offset %d has leader epoch %d below %d", i, l.leo()+int64(i), r.epoch, latest)
		}
		latest = r.epoch
	}
	for _, r := range rs {
		l.assign(r.epoch, l.leo())
		l.recs = append(l.recs, r)
	}
	return nil
}

// truncateTo is segment's TruncateTo: cut at offset (durably), drop epoch
// entries at or after the new end, lower the HW checkpoint to it. At or
// above the end it only drops epoch entries starting at or after the end.
func (l *simLog) truncateTo(offset int64) {
	if offset < l.leo() {
		l.recs = l.recs[:offset]
	}
	l.truncateEpochsFromEnd(l.leo())
	l.flushed = min(l.flushed, l.leo())
	l.hwCkpt = min(l.hwCkpt, l.leo())
}

func (l *simLog) flush() { l.flushed = l.leo() }

// recover is what a restart finds: after a power loss only the flushed
// prefix; the cache is trimmed to the recovered end as segment's load does.
func (l *simLog) recover(powerLoss bool) {
	if powerLoss {
		l.recs = l.recs[:l.flushed]
	}
	l.flushed = l.leo()
	l.truncateEpochsFromEnd(l.leo())
	l.hwCkpt = min(l.hwCkpt, l.leo())
}

// wipe is a lost disk.
func (l *simLog) wipe() {
	l.recs = l.recs[:0]
	l.epochs = l.epochs[:0]
	l.flushed, l.hwCkpt = 0, 0
}
