package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	deletedSuffix   = ".deleted"
	tmpSuffix       = ".tmp"
)

// segmentName is the base offset as 20 zero-padded digits.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset of "<20 digits>.log".
func parseSegmentName(name string) (int64, bool) {
	if len(name) != 20+len(logSuffix) || filepath.Ext(name) != logSuffix {
		return 0, false
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// finalize actions for a segment whose references have drained.
const (
	finalizeKeep   int32 = iota // replaced by a truncated copy that owns the file
	finalizeClose               // log closed: close the file
	finalizeRemove              // deleted: close the file and remove its (renamed) files
)

// deadBit marks a segment that no new reader may pin.
const deadBit = int64(1) << 62

// tsOffset is a max timestamp and the base offset of the batch carrying it.
type tsOffset struct{ ts, offset int64 }

// segment is one log file plus its in-memory indexes. Fields under "writer"
// are owned by the goroutine holding Log.mu; the atomics are what readers
// see. A segment is never modified in ways readers could observe except by
// growing: truncation builds a new segment value over the same file.
type segment struct {
	base int64
	path string // ".log" path (its index files share the stem)
	f    File

	size atomic.Int64 // published bytes: every byte below is a whole, valid batch
	next atomic.Int64 // published next offset (base when empty)
	maxT atomic.Pointer[tsOffset]
	idx  entryList[indexEntry]
	tidx entryList[timeEntry]

	refs     atomic.Int64 // pins by views and syncs, plus deadBit
	action   atomic.Int32 // finalize action, set before kill
	drained  chan struct{}
	removeAt []string // renamed files to remove on finalize
	fs       FS
	onErr    func(error)

	// writer state
	wsize          int64
	sinceIdx       int64 // bytes appended since the last offset-index entry
	sinceTime      int64 // bytes appended since the last time-index entry
	createdAt      time.Time
	dirty          bool // in Log.dirty
	indexesWritten bool // index files on disk describe this segment
	recovered      bool // re-validated by the last Open
}

func newSegment(fsys FS, base int64, path string, f File, onErr func(error)) *segment {
	s := &segment{base: base, path: path, f: f, fs: fsys, drained: make(chan struct{}), onErr: onErr}
	s.next.Store(base)
	s.maxT.Store(&tsOffset{ts: -1, offset: -1})
	return s
}

func (s *segment) stem() string          { return s.path[:len(s.path)-len(logSuffix)] }
func (s *segment) indexPath() string     { return s.stem() + indexSuffix }
func (s *segment) timeIndexPath() string { return s.stem() + timeIndexSuffix }

// acquire pins the segment; it fails once the segment is dead (replaced or
// deleted), and the caller must then reload the segment list.
func (s *segment) acquire() bool {
	for {
		v := s.refs.Load()
		if v&deadBit != 0 {
			return false
		}
		if s.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (s *segment) release() {
	if s.refs.Add(-1) == deadBit {
		s.finalize()
	}
}

// kill forbids new pins; the finalize action runs when the last pin goes,
// which may be now. Exactly one goroutine observes the count reach
// deadBit|0, so finalize runs once.
func (s *segment) kill(action int32) {
	s.action.Store(action)
	if s.refs.Or(deadBit) == 0 {
		s.finalize()
	}
}

func (s *segment) finalize() {
	switch s.action.Load() {
	case finalizeClose:
		if err := s.f.Close(); err != nil {
			s.onErr(fmt.Errorf("close %s: %w", s.path, err))
		}
	case finalizeRemove:
		if err := s.f.Close(); err != nil {
			s.onErr(fmt.Errorf("close %s: %w", s.path, err))
		}
		for _, p := range s.removeAt {
			if err := removeIfExists(s.fs, p); err != nil {
				s.onErr(fmt.Errorf("remove %s: %w", p, err))
			}
		}
	}
	close(s.drained)
}

// noteBatch updates the writer's index state for a batch appended at pos.
// interval is the index spacing in bytes.
func (s *segment) noteBatch(h Header, pos int64, interval int64) {
	size := int64(h.Size())
	if s.sinceIdx >= interval {
		s.idx.add(indexEntry{offset: h.BaseOffset, pos: pos})
		s.sinceIdx = 0
	}
	s.sinceIdx += size
	cur := s.maxT.Load()
	if h.MaxTimestamp > cur.ts {
		s.maxT.Store(&tsOffset{ts: h.MaxTimestamp, offset: h.BaseOffset})
		if s.sinceTime >= interval || s.tidx.n.Load() == 0 {
			s.tidx.add(timeEntry{ts: h.MaxTimestamp, offset: h.BaseOffset})
			s.sinceTime = 0
		}
	}
	s.sinceTime += size
}

// trailer is the state the index files describe.
func (s *segment) trailer() indexTrailer {
	m := s.maxT.Load()
	return indexTrailer{logSize: s.size.Load(), nextOffset: s.next.Load(), maxTs: m.ts, maxTsOffset: m.offset}
}

// writeIndexes writes both index files for the segment's current state
// (without syncing; the trailer makes a torn file detectable).
func (s *segment) writeIndexes(fsys FS) error {
	t := s.trailer()
	if err := writeWhole(fsys, s.indexPath(), encodeOffsetIndex(s.base, s.idx.load(), t)); err != nil {
		return err
	}
	if err := writeWhole(fsys, s.timeIndexPath(), encodeTimeIndex(s.base, s.tidx.load(), t)); err != nil {
		return err
	}
	s.indexesWritten = true
	return nil
}

// removeIndexes deletes the index files of a segment about to be written.
func (s *segment) removeIndexes(fsys FS) error {
	for _, p := range []string{s.indexPath(), s.timeIndexPath()} {
		if err := removeIfExists(fsys, p); err != nil {
			return err
		}
	}
	s.indexesWritten = false
	return nil
}

func writeWhole(fsys FS, name string, data []byte) error {
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(data, 0)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", name, werr)
	}
	return nil
}

// syncFile opens name and syncs it.
func syncFile(fsys FS, name string) error {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	serr := f.Sync()
	if cerr := f.Close(); serr == nil {
		serr = cerr
	}
	return serr
}

// headerReader reads batch headers from a segment file through a small
// buffer, so that runs of small batches cost one pread.
type headerReader struct {
	f     File
	buf   []byte
	start int64 // file position of buf[0]
	n     int   // valid bytes in buf
}

// at returns the header of the batch at pos, whose whole batch must lie
// below limit (the published size). It does not check the CRC: bytes below
// the published size were validated when they were appended or recovered.
func (r *headerReader) at(pos, limit int64) (Header, error) {
	if pos+HeaderSize > limit {
		return Header{}, fmt.Errorf("%w: header at %d past end %d", ErrCorrupt, pos, limit)
	}
	if pos < r.start || pos+HeaderSize > r.start+int64(r.n) {
		want := int64(len(r.buf))
		if limit-pos < want {
			want = limit - pos
		}
		n, err := r.f.ReadAt(r.buf[:want], pos)
		if n < HeaderSize {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, fmt.Errorf("read header at %d: %w", pos, err)
		}
		r.start, r.n = pos, n
	}
	off := pos - r.start
	h := parseHeader(r.buf[off : off+HeaderSize])
	if h.BatchLength < HeaderSize-lengthPrefix || pos+int64(h.Size()) > limit {
		return Header{}, fmt.Errorf("%w: batch at %d with length %d past end %d", ErrCorrupt, pos, h.BatchLength, limit)
	}
	return h, nil
}

// locate finds the batch containing offset in s, scanning from the index
// floor. It returns the batch's position and header; found is false when
// every batch below limit ends before offset (pos is then limit).
// Every header read is checked to start at the offset the previous batch
// (or the index entry) promises, so an index that disagrees with its log
// yields ErrCorrupt, never wrong bytes.
func (s *segment) locate(r *headerReader, offset, limit int64) (int64, Header, bool, error) {
	e := floorIndex(s.idx.load(), s.base, offset)
	pos, expect := e.pos, e.offset
	for pos < limit {
		h, err := r.expect(pos, limit, expect)
		if err != nil {
			return 0, Header{}, false, fmt.Errorf("segment %s: %w", s.path, err)
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
		expect = h.NextOffset()
	}
	return limit, Header{}, false, nil
}

// expect is at plus a check that the batch starts at offset want.
func (r *headerReader) expect(pos, limit, want int64) (Header, error) {
	h, err := r.at(pos, limit)
	if err != nil {
		return h, err
	}
	if h.BaseOffset != want {
		return Header{}, fmt.Errorf("%w: batch at %d has base offset %d, expected %d", ErrCorrupt, pos, h.BaseOffset, want)
	}
	return h, nil
}
