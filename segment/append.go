package segment

import (
	"encoding/binary"
	"fmt"
)

// AppendInfo describes an append.
type AppendInfo struct {
	FirstOffset, LastOffset int64
	// MaxTimestamp is the largest batch max timestamp appended and
	// OffsetOfMaxTimestamp the base offset of the batch carrying it.
	MaxTimestamp         int64
	OffsetOfMaxTimestamp int64
	// Headers are the appended batch headers, with the offsets and epoch
	// as stored.
	Headers []Header
}

// Append is the leader's append. It validates every batch in batches (one or
// more concatenated RecordBatch v2), rejects control batches and non-zero
// producer base offsets, stamps baseOffset and partitionLeaderEpoch in place
// (both outside the CRC) and appends all batches so that readers see all of
// them or none. It returns once the durability policy is met: with
// DurabilityAlways after an fdatasync covering the append, shared with
// concurrent appends. On a validation error nothing is written and
// batches is unchanged.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendInfo, error) {
	info, pending, err := l.AppendPending(batches, leaderEpoch)
	if err != nil {
		return info, err
	}
	return info, pending.Wait()
}

// Pending is an append that has been written (readers bounded by the log end
// can see it) but that may not yet be durable under DurabilityAlways.
// The zero value is already durable.
type Pending struct {
	l   *Log
	seq int64
}

// Wait returns once the append is durable under the log's policy: after an
// fdatasync covering it (shared with concurrent appends) for
// DurabilityAlways, at once for the other policies.
func (p Pending) Wait() error {
	if p.l == nil || p.l.cfg.Durability != DurabilityAlways {
		return nil
	}
	return p.l.syncTo(p.seq)
}

// AppendPending is Append without the wait for durability: it returns once
// the batches are written, with a Pending to wait on. A caller that
// serialises appends under its own lock (a partition leader checking
// producer sequences) releases that lock before Pending.Wait, so that
// concurrent producers to one partition share an fdatasync.
func (l *Log) AppendPending(batches []byte, leaderEpoch int32) (AppendInfo, Pending, error) {
	info, seq, err := l.appendLeader(batches, leaderEpoch)
	if err != nil {
		return info, Pending{}, err
	}
	return info, Pending{l: l, seq: seq}, nil
}

// Checked is one producer batch that Check has validated, with its header.
// Only Check makes one, so AppendCheckedPending appends it without running
// the CRC and field checks a second time. The zero value holds no batch.
type Checked struct {
	b []byte
	h Header
}

// Check validates b as exactly one batch (see ValidateBatch) for a later
// AppendCheckedPending. The caller must not change b in between.
func Check(b []byte, maxBatchBytes int) (Checked, error) {
	h, err := ValidateBatch(b, maxBatchBytes)
	if err != nil {
		return Checked{}, err
	}
	return Checked{b: b, h: h}, nil
}

// Header returns the checked batch's header.
func (c Checked) Header() Header { return c.h }

// AppendCheckedPending is AppendPending for a batch that Check validated: a
// leader that needs the header before appending (producer sequences)
// validates once. The log's own size bound still applies.
func (l *Log) AppendCheckedPending(c Checked, leaderEpoch int32) (AppendInfo, Pending, error) {
	if c.b == nil {
		return AppendInfo{}, Pending{}, fmt.Errorf("%w: no checked batch", ErrCorrupt)
	}
	if l.cfg.MaxBatchBytes > 0 && c.h.Size() > l.cfg.MaxBatchBytes {
		return AppendInfo{}, Pending{}, fmt.Errorf("%w: batch of %d bytes, max %d", ErrTooLarge, c.h.Size(), l.cfg.MaxBatchBytes)
	}
	info, seq, err := l.appendStamped(c.b, []Header{c.h}, leaderEpoch)
	if err != nil {
		return info, Pending{}, err
	}
	return info, Pending{l: l, seq: seq}, nil
}

func (l *Log) appendLeader(batches []byte, leaderEpoch int32) (AppendInfo, int64, error) {
	hdrs, err := ValidateBatches(batches, l.cfg.MaxBatchBytes)
	if err != nil {
		return AppendInfo{}, 0, err
	}
	return l.appendStamped(batches, hdrs, leaderEpoch)
}

// appendStamped applies the leader's rules to validated batches, stamps
// their offsets and epoch and writes them.
func (l *Log) appendStamped(batches []byte, hdrs []Header, leaderEpoch int32) (AppendInfo, int64, error) {
	for i, h := range hdrs {
		if h.Control() {
			return AppendInfo{}, 0, fmt.Errorf("batch %d: %w: control batch from a producer", i, ErrInvalidRecord)
		}
		if h.BaseOffset != 0 {
			return AppendInfo{}, 0, fmt.Errorf("batch %d: %w: producer base offset %d, want 0", i, ErrInvalidRecord, h.BaseOffset)
		}
	}
	if leaderEpoch < 0 {
		return AppendInfo{}, 0, fmt.Errorf("%w: leader epoch %d", ErrStaleEpoch, leaderEpoch)
	}
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return AppendInfo{}, 0, err
	}
	if latest, ok := l.epochs.latest(); ok && leaderEpoch < latest {
		l.mu.Unlock()
		return AppendInfo{}, 0, fmt.Errorf("%w: %d, latest %d", ErrStaleEpoch, leaderEpoch, latest)
	}
	first := l.leo.Load()
	next, pos := first, 0
	for i := range hdrs {
		b := batches[pos:]
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(next))
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
		hdrs[i].BaseOffset = next
		hdrs[i].PartitionLeaderEpoch = leaderEpoch
		next = hdrs[i].NextOffset()
		pos += hdrs[i].Size()
	}
	if l.epochs.assign(leaderEpoch, first) {
		if err := l.persistEpochs(); err != nil {
			l.mu.Unlock()
			return AppendInfo{}, 0, fmt.Errorf("segment: persist leader epochs: %w", err)
		}
	}
	return l.writeAppend(batches, hdrs)
}

// AssignEpoch records that leader epoch epoch starts at startOffset (a new
// leader calls it with its LEO before accepting writes) and persists the
// cache. Entries with a higher or equal epoch or start offset are dropped.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if epoch < 0 || startOffset < 0 || startOffset > l.leo.Load() {
		return fmt.Errorf("segment: assign epoch %d at %d (log end %d): %w", epoch, startOffset, l.leo.Load(), ErrInvalidRecord)
	}
	if l.epochs.assign(epoch, startOffset) {
		return l.persistEpochs()
	}
	return nil
}

func (l *Log) writableLocked() error {
	if l.closed {
		return ErrClosed
	}
	if l.failErr != nil {
		return l.failErr
	}
	return nil
}

// failLocked makes the log refuse further writes and returns the sticky
// error. Called with l.mu held.
func (l *Log) failLocked(err error) error {
	if l.failErr == nil {
		l.failErr = fmt.Errorf("%w: %w", ErrFailed, err)
		l.log.Error("log failed; writes refused until reopen", "err", err)
	}
	return l.failErr
}

// writeAppend writes validated, offset-checked batches and returns the write
// sequence a durability wait needs. Called with l.mu held; releases it.
func (l *Log) writeAppend(batches []byte, hdrs []Header) (AppendInfo, int64, error) {
	err := l.appendLocked(batches, hdrs)
	seq := l.writeSeq
	l.mu.Unlock()
	if err != nil {
		return AppendInfo{}, 0, err
	}
	info := AppendInfo{
		FirstOffset:          hdrs[0].BaseOffset,
		LastOffset:           hdrs[len(hdrs)-1].LastOffset(),
		MaxTimestamp:         -1,
		OffsetOfMaxTimestamp: -1,
		Headers:              hdrs,
	}
	for _, h := range hdrs {
		if h.MaxTimestamp > info.MaxTimestamp {
			info.MaxTimestamp, info.OffsetOfMaxTimestamp = h.MaxTimestamp, h.BaseOffset
		}
	}
	return info, seq, nil
}

// appendLocked writes batches to the active segment (rolling first if
// needed) and publishes them. Readers see nothing until the size and LEO
// stores at the end, so a multi-batch append is atomic for them.
func (l *Log) appendLocked(batches []byte, hdrs []Header) error {
	if l.shouldRoll(len(batches)) {
		if err := l.roll(); err != nil {
			return l.failLocked(fmt.Errorf("roll: %w", err))
		}
	}
	s := l.active
	pos := s.wsize
	if _, err := s.f.WriteAt(batches, pos); err != nil {
		// Nothing was published; cut any partial write so the file stays
		// equal to what readers and recovery expect.
		if terr := s.f.Truncate(pos); terr != nil {
			return l.failLocked(fmt.Errorf("write %s at %d: %w; truncate back: %w", s.path, pos, err, terr))
		}
		return fmt.Errorf("segment: write %s at %d: %w", s.path, pos, err)
	}
	interval := int64(l.cfg.IndexIntervalBytes)
	p := pos
	for _, h := range hdrs {
		s.noteBatch(h, p, interval)
		p += int64(h.Size())
	}
	s.wsize = p
	next := hdrs[len(hdrs)-1].NextOffset()
	s.next.Store(next)
	s.size.Store(p)
	l.leo.Store(next)
	l.writeSeq++
	if !s.dirty {
		s.dirty = true
		l.dirty = append(l.dirty, s)
	}
	return nil
}

func (l *Log) shouldRoll(n int) bool {
	s := l.active
	if s.wsize == 0 {
		return false
	}
	if s.wsize+int64(n) > l.cfg.SegmentBytes {
		return true
	}
	return l.cfg.SegmentMaxAge > 0 && l.now().Sub(s.createdAt) >= l.cfg.SegmentMaxAge
}

// roll seals the active segment (writing its index files) and starts a new
// one at the log end offset. The background flusher syncs the sealed
// segment and then advances the recovery point.
func (l *Log) roll() error {
	old := l.active
	if err := old.writeIndexes(l.fs); err != nil {
		return err
	}
	s, err := l.createSegment(l.leo.Load())
	if err != nil {
		return err
	}
	list := l.segs.Load()
	segs := make([]*segment, len(list.segs), len(list.segs)+1)
	copy(segs, list.segs)
	l.segs.Store(&segList{segs: append(segs, s)})
	l.active = s
	l.sealed = append(l.sealed, old)
	l.log.Info("segment rolled", "base_offset", s.base, "sealed_bytes", old.wsize)
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return nil
}
