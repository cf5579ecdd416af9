package segment

import (
	"fmt"
	"os"
	"sort"
	"sync/atomic"
)

// Range is a run of whole batches in one segment file.
type Range struct {
	File *os.File
	Pos  int64
	Len  int64
}

// View is the result of Read: file ranges of whole batches, in offset order.
// It pins the segments it covers, so the ranges stay readable (no deletion,
// no truncation, no close) until Release. Safe for concurrent Release.
type View struct {
	Ranges   []Range
	segs     []*segment
	released atomic.Bool
}

// Release unpins the view's segments. Idempotent; a nil view is fine.
func (v *View) Release() {
	if v == nil || !v.released.CompareAndSwap(false, true) {
		return
	}
	for _, s := range v.segs {
		s.release()
	}
}

// Len is the total length of the ranges.
func (v *View) Len() int64 {
	var n int64
	for _, r := range v.Ranges {
		n += r.Len
	}
	return n
}

// Read returns the whole batches starting at the one that contains offset
// and ending before the first batch whose last offset is >= upper (the high
// watermark for consumers, the log end for followers), within maxBytes —
// except that the first batch is returned whole even when it alone exceeds
// maxBytes (KIP-74). offset == LEO or offset >= upper gives an empty view;
// offset below the log start or above the LEO gives ErrOffsetOutOfRange.
// Read never takes the writer's lock. The caller must Release the view.
func (l *Log) Read(offset int64, maxBytes int, upper int64) (*View, error) {
	bp := l.bufs.Get().(*[]byte)
	defer l.bufs.Put(bp)
	for {
		if l.closedFlg.Load() {
			return nil, ErrClosed
		}
		// LEO first: a list loaded afterwards holds every segment with
		// data below it (roll publishes the list before writing).
		leo := l.leo.Load()
		list := l.segs.Load()
		start := l.ls.Load()
		if offset < start || offset > leo {
			return nil, fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, start, leo)
		}
		upper = min(upper, leo)
		v := &View{}
		if offset >= upper {
			return v, nil
		}
		ok, err := l.collect(v, list, offset, int64(maxBytes), upper, *bp)
		if err != nil {
			v.Release()
			return nil, err
		}
		if ok {
			return v, nil
		}
		v.Release()
		// A segment died under us, and a newer list is then already
		// published. If there is none, the offset has no segment.
		if l.closedFlg.Load() {
			return nil, ErrClosed
		}
		if l.segs.Load() == list {
			return nil, fmt.Errorf("%w: offset %d has no segment", ErrOffsetOutOfRange, offset)
		}
	}
}

// collect fills v from list. It returns false when a segment could not be
// pinned because it was replaced or deleted.
func (l *Log) collect(v *View, list *segList, offset, maxBytes, upper int64, buf []byte) (bool, error) {
	i := list.find(offset)
	if i < 0 {
		return false, nil
	}
	var total int64
	located := false
	for ; i < len(list.segs); i++ {
		s := list.segs[i]
		if !s.acquire() {
			return false, nil
		}
		limit := s.size.Load()
		r := headerReader{f: s.f, buf: buf}
		pos, expect := int64(0), s.base
		if !located {
			p, h, found, err := s.locate(&r, offset, limit)
			if err != nil {
				s.release()
				return false, err
			}
			if !found {
				s.release()
				continue
			}
			located, pos, expect = true, p, h.BaseOffset
		}
		start := pos
		done := false
		for pos < limit {
			if total > 0 {
				if e, ok := skipByIndex(s.idx.load(), pos, limit, maxBytes-total, upper); ok {
					total += e.pos - pos
					pos, expect = e.pos, e.offset
					if pos >= limit {
						break
					}
				}
			}
			h, err := r.expect(pos, limit, expect)
			if err != nil {
				s.release()
				return false, fmt.Errorf("segment %s: %w", s.path, err)
			}
			size := int64(h.Size())
			if h.LastOffset() >= upper || (total > 0 && total+size > maxBytes) {
				done = true
				break
			}
			pos += size
			total += size
			expect = h.NextOffset()
		}
		if pos > start {
			v.Ranges = append(v.Ranges, Range{File: s.f.OS(), Pos: start, Len: pos - start})
			v.segs = append(v.segs, s)
		} else {
			s.release()
		}
		if done {
			break
		}
	}
	return true, nil
}

// skipByIndex jumps from pos to the furthest index entry that is reachable
// within budget bytes, inside limit, and whose batch starts at or below
// upper — every batch before such an entry ends below upper. Index entries
// sit on batch boundaries, so the jump keeps whole batches.
func skipByIndex(entries []indexEntry, pos, limit, budget, upper int64) (indexEntry, bool) {
	reach := min(pos+budget, limit)
	j := sort.Search(len(entries), func(k int) bool {
		return entries[k].pos > reach || entries[k].offset > upper
	})
	if j == 0 || entries[j-1].pos <= pos {
		return indexEntry{}, false
	}
	return entries[j-1], true
}

// ScanHeaders calls fn with every batch header from the batch containing
// from (clamped to the log start) to the log end at the time of the call,
// in order. It stops at fn's first error and returns it. It pins one
// segment at a time and never takes the writer's lock.
func (l *Log) ScanHeaders(from int64, fn func(h Header) error) error {
	bp := l.bufs.Get().(*[]byte)
	defer l.bufs.Put(bp)
	end := l.leo.Load()
	if from > end {
		return fmt.Errorf("%w: offset %d beyond log end %d", ErrOffsetOutOfRange, from, end)
	}
	next := max(from, l.ls.Load())
	for next < end {
		if l.closedFlg.Load() {
			return ErrClosed
		}
		list := l.segs.Load()
		i := max(list.find(next), 0)
		advanced := false
		for ; i < len(list.segs) && next < end; i++ {
			s := list.segs[i]
			if !s.acquire() {
				break // reload the list
			}
			limit := s.size.Load()
			r := headerReader{f: s.f, buf: *bp}
			pos, first, found, err := s.locate(&r, next, limit)
			expect := first.BaseOffset
			for err == nil && found && pos < limit && next < end {
				var h Header
				if h, err = r.expect(pos, limit, expect); err != nil {
					break
				}
				expect = h.NextOffset()
				if err = fn(h); err != nil {
					s.release()
					return err
				}
				pos += int64(h.Size())
				next = h.NextOffset()
				advanced = true
			}
			s.release()
			if err != nil {
				return err
			}
			if !found {
				next = max(next, s.next.Load())
			}
		}
		if !advanced && i >= len(list.segs) {
			return nil // nothing more below end (e.g. truncated meanwhile)
		}
	}
	return nil
}

// OffsetForTimestamp returns the offset and timestamp of the first record,
// in offset order, whose timestamp is >= ts, as Kafka does: it finds the
// first batch whose max timestamp is >= ts (time index, then a header
// scan) and walks that batch's records, decompressing them if needed.
// When the batch cannot be walked (LogAppendTime, where every record
// carries the max timestamp; an unknown codec; bytes that do not decode;
// more than 64 MiB of records) it answers with the batch's base offset and
// max timestamp. Records below the log start are never an answer (Kafka's
// startingOffset): batches wholly below it are skipped and one holding it
// answers with an offset at or above it. ok is false when no batch
// qualifies.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, ok bool) {
	bp := l.bufs.Get().(*[]byte)
	defer l.bufs.Put(bp)
	for attempt := 0; attempt < 8; attempt++ {
		list := l.segs.Load()
		start := l.ls.Load()
		retry := false
		for _, s := range list.segs {
			if s.maxT.Load().ts < ts || s.next.Load() <= start {
				continue
			}
			if !s.acquire() {
				retry = true
				break
			}
			off, t, found := scanForTimestamp(s, ts, start, *bp)
			s.release()
			if found {
				return off, t, true
			}
		}
		if !retry {
			return -1, -1, false
		}
	}
	return -1, -1, false
}

// scanForTimestamp finds, in s, the first batch ending at or above start
// whose max timestamp is >= ts, and the record in it.
func scanForTimestamp(s *segment, ts, start int64, buf []byte) (int64, int64, bool) {
	tidx := s.tidx.load()
	idx := s.idx.load()
	j := sort.Search(len(tidx), func(k int) bool { return tidx[k].ts >= ts })
	var pos int64
	if j > 0 {
		pos = floorIndex(idx, s.base, tidx[j-1].offset).pos
	}
	if start > s.base {
		pos = max(pos, floorIndex(idx, s.base, start).pos)
	}
	limit := s.size.Load()
	r := headerReader{f: s.f, buf: buf}
	for pos < limit {
		h, err := r.at(pos, limit)
		if err != nil {
			return 0, 0, false
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= start {
			off, t := recordInBatch(s.f, pos, h, ts, start)
			return off, t, true
		}
		pos += int64(h.Size())
	}
	return 0, 0, false
}
