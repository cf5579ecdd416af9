package segment

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// segList is an immutable, base-ordered list of segments. Readers load it
// with one atomic read; the writer publishes a new one on roll, truncation
// and retention.
type segList struct{ segs []*segment }

// find returns the index of the last segment whose base is <= offset, or -1.
func (l *segList) find(offset int64) int {
	i, _ := slices.BinarySearchFunc(l.segs, offset, func(s *segment, off int64) int {
		if s.base <= off {
			return -1
		}
		return 1
	})
	return i - 1
}

// Log is one partition's log: a directory of segments with one writer and
// any number of concurrent readers. All methods are safe for concurrent use;
// writes (Append, AppendReplica, truncation, retention, Flush) serialise on
// an internal mutex that the read path never takes.
type Log struct {
	dir  string
	cfg  Config
	fs   FS
	log  *slog.Logger
	now  func() time.Time
	segs atomic.Pointer[segList]
	leo  atomic.Int64
	ls   atomic.Int64 // log start offset

	epochs epochCache
	rp     atomic.Int64 // recovery point: everything below is synced
	hw     atomic.Int64 // last checkpointed high watermark (unclamped)
	bufs   sync.Pool    // *[]byte header-read buffers for readers

	mu        sync.Mutex // writer lock
	active    *segment
	writeSeq  int64      // appends written so far
	dirty     []*segment // segments with unsynced writes
	dirDirty  bool       // directory entries changed since the last sync
	sealed    []*segment // rolled segments whose index files are unsynced
	failErr   error      // sticky write failure
	truncGen  int64      // bumped by every truncation
	hwWritten int64      // value in the high-watermark file; -1 when none
	closed    bool
	closedFlg atomic.Bool

	gathering atomic.Bool // a syncer waits for its group to gather

	syncMu      sync.Mutex
	syncCond    *sync.Cond
	syncing     bool
	arrivals    int64 // callers of syncTo so far
	lastCapture int64 // arrivals when the running/last sync captured
	prevCapture int64 // arrivals when the sync before it captured
	expectGroup int64 // group size the next syncer gathers for
	syncedSeq   int64
	syncErr     error

	kick chan struct{} // wakes the background flusher
	stop chan struct{}
	done chan struct{}
}

// Open opens (creating if needed) the log in dir and recovers it: segments
// at or after the recovery point, and any whose index files are missing or
// disagree with the log, are re-validated batch by batch; the log is cut at
// the first torn or corrupt batch.
func Open(dir string, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, cfg: cfg, fs: cfg.FS, log: cfg.Logger, now: cfg.Now}
	if l.fs == nil {
		l.fs = OSFS()
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.log = l.log.With("dir", dir)
	if l.now == nil {
		l.now = time.Now
	}
	l.syncCond = sync.NewCond(&l.syncMu)
	l.bufs.New = func() any { b := make([]byte, 4096); return &b }
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", dir, err)
	}
	if err := l.load(); err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", dir, err)
	}
	l.kick = make(chan struct{}, 1)
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.background()
	return l, nil
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset is the first offset that may be read.
func (l *Log) LogStartOffset() int64 { return l.ls.Load() }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// RecoveryPoint is the offset below which everything is known synced.
func (l *Log) RecoveryPoint() int64 { return l.rp.Load() }

// LatestEpoch returns the latest leader epoch in the epoch cache.
func (l *Log) LatestEpoch() (int32, bool) { return l.epochs.latest() }

// EpochEntries returns a copy of the leader-epoch cache.
func (l *Log) EpochEntries() []EpochEntry { return l.epochs.snapshot() }

// EndOffsetForEpoch answers OffsetForLeaderEpoch with Kafka's semantics:
// (epoch, LEO) for the latest epoch; for an older one, the largest known
// epoch <= epoch and the start offset of the next higher epoch; (-1, -1)
// when epoch is above the latest or nothing is known.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return l.epochs.endOffsetFor(epoch, l.leo.Load())
}

// Size returns the total bytes of all segments.
func (l *Log) Size() int64 {
	var n int64
	for _, s := range l.segs.Load().segs {
		n += s.size.Load()
	}
	return n
}

// NumSegments returns how many segments the log has.
func (l *Log) NumSegments() int { return len(l.segs.Load().segs) }

// MaxTimestampAndOffset returns the largest batch max timestamp in the log
// and the base offset of the batch carrying it; (-1, -1) when the log has
// no timestamps.
func (l *Log) MaxTimestampAndOffset() (int64, int64) {
	best := tsOffset{ts: -1, offset: -1}
	for _, s := range l.segs.Load().segs {
		if m := s.maxT.Load(); m.ts > best.ts {
			best = *m
		}
	}
	return best.ts, best.offset
}

func (l *Log) segPath(base int64) string {
	return filepath.Join(l.dir, segmentName(base)+logSuffix)
}

func (l *Log) onErr(err error) { l.log.Warn("segment file cleanup failed", "err", err) }

// load reads the directory, checkpoints and segments, recovering as needed.
func (l *Log) load() (err error) {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, deletedSuffix), strings.HasSuffix(name, tmpSuffix):
			if err := removeIfExists(l.fs, filepath.Join(l.dir, name)); err != nil {
				return err
			}
		default:
			if b, ok := parseSegmentName(name); ok {
				bases = append(bases, b)
			}
		}
	}
	slices.Sort(bases)

	rp, rpOK, err := readOffsetCheckpoint(l.fs, filepath.Join(l.dir, recoveryCheckpointFile))
	if err != nil {
		return err
	}
	lsOff, _, err := readOffsetCheckpoint(l.fs, filepath.Join(l.dir, logStartCheckpointFile))
	if err != nil {
		return err
	}
	epochsOK := l.loadEpochs()
	epochsBefore := l.epochs.encode()
	if !rpOK {
		rp = 0
	}

	var segs []*segment
	defer func() {
		if err != nil {
			for _, s := range segs {
				_ = s.f.Close()
			}
		}
	}()
	recovering := false
	for i, base := range bases {
		// Segments are contiguous. A gap means the tail of the previous
		// segment was lost (e.g. unsynced at a power loss) while a later
		// segment survived: everything from here on is beyond the prefix.
		cut := len(segs) > 0 && segs[len(segs)-1].next.Load() != base
		if !cut {
			s, trusted, err := l.openSegment(base, rp, !recovering)
			if err != nil {
				return err
			}
			segs = append(segs, s)
			if !trusted {
				recovering = true
				if cut, err = l.recoverOne(s); err != nil {
					return err
				}
			}
			i++
		}
		if cut {
			for _, later := range bases[i:] {
				if err := l.removeSegmentFiles(later); err != nil {
					return err
				}
			}
			recovering = true
			break
		}
	}

	if len(segs) == 0 {
		s, err := l.createSegment(lsOff)
		if err != nil {
			return err
		}
		segs = append(segs, s)
	}
	last := segs[len(segs)-1]
	l.leo.Store(last.next.Load())
	start := max(lsOff, segs[0].base)
	start = min(start, l.leo.Load())
	l.ls.Store(start)
	l.segs.Store(&segList{segs: segs})
	if err := l.loadHighWatermark(); err != nil {
		return err
	}

	if !epochsOK {
		l.epochs.clear()
		if err := l.rebuildEpochs(segs); err != nil {
			return err
		}
	}
	l.epochs.truncateFromEnd(l.leo.Load())
	l.epochs.truncateFromStart(start)
	if !epochsOK || !bytes.Equal(epochsBefore, l.epochs.encode()) {
		if err := l.persistEpochs(); err != nil {
			return err
		}
	}

	// The active segment will be written: its index files would go stale.
	if err := last.removeIndexes(l.fs); err != nil {
		return err
	}
	l.active = last
	if recovering || !rpOK {
		// Make the recovered state durable, then record it.
		for _, s := range segs {
			if s.recovered {
				if err := s.f.Sync(); err != nil {
					return fmt.Errorf("sync %s: %w", s.path, err)
				}
			}
		}
		if err := syncDir(l.fs, l.dir); err != nil {
			return err
		}
		rp = l.leo.Load()
		if err := l.writeRecoveryPoint(rp); err != nil {
			return err
		}
	}
	l.rp.Store(min(rp, l.leo.Load()))
	return nil
}

// openSegment opens a segment file. With tryTrust it loads the index files
// and trusts them when they match the log file and the segment lies wholly
// below the recovery point; otherwise the caller recovers it.
func (l *Log) openSegment(base, rp int64, tryTrust bool) (*segment, bool, error) {
	path := l.segPath(base)
	f, err := l.fs.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	s := newSegment(l.fs, base, path, f, l.onErr)
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, false, err
	}
	s.createdAt = st.ModTime()
	s.wsize = st.Size()
	if !tryTrust {
		return s, false, nil
	}
	if err := l.loadIndexes(s, st.Size(), rp); err != nil {
		l.log.Info("segment index not trusted; recovering", "segment", path, "reason", err)
		return s, false, nil
	}
	return s, true, nil
}

// loadIndexes loads and checks s's index files against its log file.
func (l *Log) loadIndexes(s *segment, fileSize, rp int64) error {
	ib, err := readFile(l.fs, s.indexPath(), maxIndexFile)
	if err != nil {
		return err
	}
	tb, err := readFile(l.fs, s.timeIndexPath(), maxIndexFile)
	if err != nil {
		return err
	}
	idx, t, err := decodeOffsetIndex(s.base, ib)
	if err != nil {
		return err
	}
	tidx, t2, err := decodeTimeIndex(s.base, tb)
	if err != nil {
		return err
	}
	switch {
	case t != t2:
		return fmt.Errorf("%w: index and time index trailers differ", errBadIndex)
	case t.logSize != fileSize:
		return fmt.Errorf("%w: written for %d bytes, log has %d", errBadIndex, t.logSize, fileSize)
	case t.nextOffset < s.base || (fileSize == 0) != (t.nextOffset == s.base):
		return fmt.Errorf("%w: next offset %d", errBadIndex, t.nextOffset)
	case t.nextOffset > rp:
		return fmt.Errorf("segment ends at %d, past the recovery point %d", t.nextOffset, rp)
	}
	// Spot-check that the first batch, the first and last index entries
	// and the last batch are where the index says.
	r := headerReader{f: s.f, buf: make([]byte, HeaderSize)}
	check := func(pos, offset int64) error {
		h, err := r.at(pos, fileSize)
		if err != nil {
			return err
		}
		if h.BaseOffset != offset {
			return fmt.Errorf("%w: batch at %d has offset %d, index says %d", errBadIndex, pos, h.BaseOffset, offset)
		}
		return nil
	}
	if fileSize > 0 {
		if err := check(0, s.base); err != nil {
			return err
		}
	}
	if n := len(idx); n > 0 {
		if err := check(idx[0].pos, idx[0].offset); err != nil {
			return err
		}
		if err := check(idx[n-1].pos, idx[n-1].offset); err != nil {
			return err
		}
		// The index's last entry is within the last few batches: walk to
		// the end and confirm the next offset.
		pos, next := idx[n-1].pos, idx[n-1].offset
		for steps := 0; pos < fileSize; steps++ {
			h, err := r.at(pos, fileSize)
			if err != nil || h.BaseOffset != next || steps > 1<<16 {
				return fmt.Errorf("%w: tail walk failed at %d", errBadIndex, pos)
			}
			pos, next = pos+int64(h.Size()), h.NextOffset()
		}
		if next != t.nextOffset {
			return fmt.Errorf("%w: log ends at %d, index says %d", errBadIndex, next, t.nextOffset)
		}
	}
	s.idx.set(idx)
	s.tidx.set(tidx)
	s.maxT.Store(&tsOffset{ts: t.maxTs, offset: t.maxTsOffset})
	s.size.Store(fileSize)
	s.next.Store(t.nextOffset)
	s.wsize = fileSize
	s.indexesWritten = true
	if n := len(idx); n > 0 {
		s.sinceIdx = fileSize - idx[n-1].pos
	} else {
		s.sinceIdx = fileSize
	}
	if n := len(tidx); n > 0 {
		s.sinceTime = fileSize // conservative: next raise gets an entry
	}
	return nil
}

// recoverOne re-validates s, truncating it at the first bad batch. It
// reports whether it cut anything. Epochs of recovered batches above the
// latest cached epoch are added to the cache, as Kafka does.
func (l *Log) recoverOne(s *segment) (bool, error) {
	fileSize := s.wsize
	end, next, reason := recoverSegment(s, fileSize, int64(l.cfg.IndexIntervalBytes), func(h Header) {
		if h.PartitionLeaderEpoch >= 0 {
			if latest, ok := l.epochs.latest(); !ok || h.PartitionLeaderEpoch > latest {
				l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
			}
		}
	})
	s.wsize = end
	s.size.Store(end)
	s.next.Store(next)
	s.recovered = true
	if reason == nil {
		l.log.Info("segment recovered", "segment", s.path, "bytes", end)
		return false, nil
	}
	l.log.Warn("segment truncated during recovery", "segment", s.path, "valid_bytes", end, "file_bytes", fileSize, "reason", reason)
	if err := s.f.Truncate(end); err != nil {
		return false, fmt.Errorf("truncate %s to %d: %w", s.path, end, err)
	}
	return true, nil
}

func (l *Log) removeSegmentFiles(base int64) error {
	stem := filepath.Join(l.dir, segmentName(base))
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := removeIfExists(l.fs, stem+suf); err != nil {
			return err
		}
	}
	l.log.Warn("segment removed: beyond the valid prefix", "base_offset", base)
	return nil
}

// createSegment creates an empty segment file at base.
func (l *Log) createSegment(base int64) (*segment, error) {
	path := l.segPath(base)
	f, err := l.fs.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	s := newSegment(l.fs, base, path, f, l.onErr)
	s.createdAt = l.now()
	if err := s.removeIndexes(l.fs); err != nil {
		_ = f.Close()
		return nil, err
	}
	l.dirDirty = true
	return s, nil
}

func (l *Log) loadEpochs() bool {
	b, err := readFile(l.fs, filepath.Join(l.dir, epochCheckpointFile), maxCheckpointBytes)
	if errors.Is(err, os.ErrNotExist) {
		return true // a new log has no epochs
	}
	if err != nil {
		l.log.Warn("leader-epoch checkpoint unreadable; rebuilding from batches", "err", err)
		return false
	}
	entries, err := decodeEpochCheckpoint(b)
	if err != nil {
		l.log.Warn("leader-epoch checkpoint malformed; rebuilding from batches", "err", err)
		return false
	}
	l.epochs.entries = entries
	return true
}

// rebuildEpochs derives the epoch cache from the batch headers.
func (l *Log) rebuildEpochs(segs []*segment) error {
	for _, s := range segs {
		r := headerReader{f: s.f, buf: make([]byte, 4096)}
		size := s.size.Load()
		for pos := int64(0); pos < size; {
			h, err := r.at(pos, size)
			if err != nil {
				return fmt.Errorf("rebuild epochs from %s: %w", s.path, err)
			}
			if latest, ok := l.epochs.latest(); h.PartitionLeaderEpoch >= 0 && (!ok || h.PartitionLeaderEpoch > latest) {
				l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
			}
			pos += int64(h.Size())
		}
	}
	return nil
}

func (l *Log) persistEpochs() error {
	return writeFileAtomic(l.fs, filepath.Join(l.dir, epochCheckpointFile), l.epochs.encode())
}

func (l *Log) writeRecoveryPoint(rp int64) error {
	return writeFileAtomic(l.fs, filepath.Join(l.dir, recoveryCheckpointFile), encodeOffsetCheckpoint(rp))
}

func (l *Log) writeLogStart(off int64) error {
	return writeFileAtomic(l.fs, filepath.Join(l.dir, logStartCheckpointFile), encodeOffsetCheckpoint(off))
}
