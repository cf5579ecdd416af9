package segment

import (
	"errors"
	"fmt"
	"os"
)

// TruncateTo removes every batch at or above offset (follower divergence).
// A batch that contains offset is removed whole, so the new log end offset
// is the base offset of the first removed batch (equal to offset when
// offset is a batch boundary, as OffsetForLeaderEpoch answers are).
// Segments wholly above are deleted once their views are released; the
// segment that is cut waits, under the writer lock, for the views pinned on
// it before its file is truncated. The truncation, the epoch cache and the
// recovery point are made durable before it returns.
// An offset at or above the log end leaves the batches alone but still
// drops epoch entries that start at or after the log end (Kafka's
// truncateFromEnd(logEndOffset)): a broker that became leader, assigned
// its epoch at its log end and wrote nothing before another leader was
// elected would otherwise refuse that leader's lower-epoch batches. An
// offset below the log start truncates fully and restarts the log at
// offset. When the cut lands below a log start that lies inside the cut
// batch, the log start drops to the new log end. The checkpointed high
// watermark is lowered to the new log end when above it.
func (l *Log) TruncateTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if leo := l.leo.Load(); offset >= leo {
		if l.epochs.truncateFromEnd(leo) {
			if err := l.persistEpochs(); err != nil {
				return l.failLocked(fmt.Errorf("persist leader epochs: %w", err))
			}
		}
		return nil
	}
	if offset < l.ls.Load() {
		return l.truncateFullyLocked(offset)
	}
	if err := l.truncateLocked(offset); err != nil {
		return l.failLocked(err)
	}
	return nil
}

func (l *Log) truncateLocked(offset int64) error {
	list := l.segs.Load()
	i := list.find(offset)
	if i < 0 {
		i = 0
	}
	old := list.segs[i]
	bp := l.bufs.Get().(*[]byte)
	r := headerReader{f: old.f, buf: *bp}
	pos, h, found, err := old.locate(&r, offset, old.size.Load())
	l.bufs.Put(bp)
	if err != nil {
		return err
	}
	newLEO := old.next.Load()
	if found {
		newLEO = h.BaseOffset
	}
	l.truncGen++

	// A fresh segment value for the surviving prefix: readers that pin it
	// can only ever see bytes below pos.
	cut := l.cutSegment(old, pos, newLEO)

	// Publish: LEO first, so a reader still holding the old list clamps
	// its ranges to the new end.
	l.leo.Store(newLEO)
	segs := append(append([]*segment(nil), list.segs[:i]...), cut)
	l.segs.Store(&segList{segs: segs})
	for _, s := range list.segs[i+1:] {
		l.retire(s)
	}
	old.kill(finalizeKeep)
	<-old.drained // views on the old value may still send bytes >= pos

	if err := cut.f.Truncate(pos); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", cut.path, pos, err)
	}
	if err := cut.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", cut.path, err)
	}
	if err := cut.removeIndexes(l.fs); err != nil {
		return err
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return err
	}
	l.active = cut
	for k, s := range l.dirty {
		if s == old {
			l.dirty[k], cut.dirty = cut, true
		}
	}
	if l.rp.Load() > newLEO {
		l.rp.Store(newLEO)
	}
	if err := l.writeRecoveryPoint(l.rp.Load()); err != nil {
		return err
	}
	if l.epochs.truncateFromEnd(newLEO) {
		if err := l.persistEpochs(); err != nil {
			return err
		}
	}
	if newLEO < l.ls.Load() {
		// The log start was inside the removed batch: nothing below the
		// new end stays readable, as after Kafka's min(target, logStart).
		if err := l.writeLogStart(newLEO); err != nil {
			return err
		}
		l.ls.Store(newLEO)
	}
	if err := l.lowerHighWatermarkLocked(newLEO); err != nil {
		return err
	}
	l.log.Info("log truncated", "offset", newLEO, "segment", cut.path)
	return nil
}

// cutSegment returns a new segment value over old's file holding only the
// bytes below pos, with index copies and recomputed writer state.
func (l *Log) cutSegment(old *segment, pos, next int64) *segment {
	s := newSegment(l.fs, old.base, old.path, old.f, l.onErr)
	s.createdAt = old.createdAt
	var idx []indexEntry
	for _, e := range old.idx.load() {
		if e.pos < pos {
			idx = append(idx, e)
		}
	}
	var tidx []timeEntry
	for _, e := range old.tidx.load() {
		if e.offset < next {
			tidx = append(tidx, e)
		}
	}
	s.idx.set(idx)
	s.tidx.set(tidx)
	s.size.Store(pos)
	s.next.Store(next)
	s.wsize = pos
	if n := len(idx); n > 0 {
		s.sinceIdx = pos - idx[n-1].pos
	} else {
		s.sinceIdx = pos
	}
	s.sinceTime = pos
	// The max timestamp of the prefix: the last kept time entry is a lower
	// bound; batches after it cannot have raised the maximum by more than
	// what a scan of them finds.
	m := tsOffset{ts: -1, offset: -1}
	start := int64(0)
	if n := len(tidx); n > 0 {
		m = tsOffset{ts: tidx[n-1].ts, offset: tidx[n-1].offset}
		start = floorIndex(idx, old.base, tidx[n-1].offset).pos
	}
	bp := l.bufs.Get().(*[]byte)
	r := headerReader{f: s.f, buf: *bp}
	for p := start; p < pos; {
		h, err := r.at(p, pos)
		if err != nil {
			break
		}
		if h.MaxTimestamp > m.ts {
			m = tsOffset{ts: h.MaxTimestamp, offset: h.BaseOffset}
		}
		p += int64(h.Size())
	}
	l.bufs.Put(bp)
	s.maxT.Store(&m)
	return s
}

// retire takes a segment out of service after a list without it has been
// published: its files are renamed to *.deleted at once (so a restart
// ignores them) and removed, with the descriptor closed, when its last view
// is released.
func (l *Log) retire(s *segment) {
	l.renameRetired(s)
	s.kill(finalizeRemove)
}

// renameRetired renames s's files to *.deleted and remembers what to remove.
func (l *Log) renameRetired(s *segment) {
	for _, p := range []string{s.path, s.indexPath(), s.timeIndexPath()} {
		dst := p + deletedSuffix
		if err := l.fs.Rename(p, dst); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				l.log.Warn("rename retired segment file", "file", p, "err", err)
				s.removeAt = append(s.removeAt, p)
			}
			continue
		}
		s.removeAt = append(s.removeAt, dst)
	}
	l.dirDirty = true
}

// TruncateFullyAndStartAt deletes every segment and restarts the log empty
// at offset: log start = log end = checkpointed high watermark = offset,
// empty epoch cache.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	return l.truncateFullyLocked(offset)
}

func (l *Log) truncateFullyLocked(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("segment: truncate fully at %d: %w", offset, ErrOffsetOutOfRange)
	}
	l.truncGen++
	list := l.segs.Load()
	// Rename first: the new segment may take the name of an old one that
	// a view still reads. Kill only after the new list is published, so a
	// reader that fails to pin an old segment always finds a newer list.
	for _, s := range list.segs {
		l.renameRetired(s)
	}
	s, err := l.createSegment(offset)
	if err != nil {
		for _, old := range list.segs {
			old.kill(finalizeRemove)
		}
		return l.failLocked(err)
	}
	l.leo.Store(offset)
	l.ls.Store(offset)
	l.segs.Store(&segList{segs: []*segment{s}})
	for _, old := range list.segs {
		old.kill(finalizeRemove)
	}
	l.active = s
	l.sealed = nil
	l.dirty = l.dirty[:0]
	l.rp.Store(offset)
	steps := []func() error{
		func() error { return syncDir(l.fs, l.dir) },
		func() error { return l.writeLogStart(offset) },
		func() error { return l.writeRecoveryPoint(offset) },
		func() error { l.epochs.clear(); return l.persistEpochs() },
		func() error { l.hw.Store(offset); return l.writeHighWatermarkLocked(offset) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return l.failLocked(err)
		}
	}
	l.dirDirty = false
	l.log.Info("log truncated fully", "offset", offset)
	return nil
}

// EnforceRetention applies RetentionBytes and RetentionAge to the segments
// below the log end; see EnforceRetentionBelow.
func (l *Log) EnforceRetention() (int, error) {
	return l.EnforceRetentionBelow(l.leo.Load())
}

// EnforceRetentionBelow deletes, oldest first, whole non-active segments
// that lie entirely below limit (the broker passes its high watermark) and
// are over the size budget or older than RetentionAge (by their newest
// batch timestamp, or their file time when they have none), or that lie
// wholly below the log start (left by a crash between AdvanceLogStart's
// checkpoint and its deletions). The log start offset advances to the
// first remaining segment, or stays where it is when it is already inside
// it. Deleted files vanish when their last view is released; this call
// does not wait.
func (l *Log) EnforceRetentionBelow(limit int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	list := l.segs.Load()
	var total int64
	for _, s := range list.segs {
		total += s.size.Load()
	}
	now := l.now()
	start := l.ls.Load()
	n := 0
	for ; n < len(list.segs)-1; n++ {
		s := list.segs[n]
		if s.next.Load() > limit {
			break
		}
		bySize := l.cfg.RetentionBytes >= 0 && total-s.size.Load() >= l.cfg.RetentionBytes
		byAge := false
		if l.cfg.RetentionAge >= 0 {
			newest := s.createdAt.UnixMilli()
			if m := s.maxT.Load(); m.ts >= 0 {
				newest = m.ts
			}
			byAge = now.UnixMilli()-newest > l.cfg.RetentionAge.Milliseconds()
		}
		breached := s.next.Load() <= start
		if !bySize && !byAge && !breached {
			break
		}
		total -= s.size.Load()
	}
	if n == 0 {
		return 0, nil
	}
	newStart := max(list.segs[n].base, start)
	n, err := l.advanceStartLocked(list, n, newStart)
	if err != nil {
		return n, err
	}
	l.log.Info("retention deleted segments", "segments", n, "log_start_offset", newStart)
	return n, nil
}
