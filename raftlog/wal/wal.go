package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/fsutil"
)

const segmentExt = ".wal"

// typeReset is written by Checkpoint as the first record of a checkpoint
// segment. It never reaches a replay callback: Open uses it to find where the
// live log starts.
const typeReset RecordType = 0xff

// Config holds WAL settings.
type Config struct {
	// SegmentBytes: a new segment is started when appending a batch would take
	// the current one past this size (a single batch may exceed it).
	// 0 means DefaultConfig's value.
	SegmentBytes int64
	// MaxRecordBytes bounds one record's payload; larger length fields read
	// back as corruption. 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int
	// Logger receives recovery and cleanup messages. nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the default WAL settings.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:   64 << 20,              // the metadata log is small; a few segments at most
		MaxRecordBytes: DefaultMaxRecordBytes, // a metadata command is far below this
	}
}

// Validate rejects settings that cannot work.
func (c Config) Validate() error {
	if c.SegmentBytes < 0 {
		return fmt.Errorf("wal: SegmentBytes %d < 0", c.SegmentBytes)
	}
	if c.MaxRecordBytes < 0 {
		return fmt.Errorf("wal: MaxRecordBytes %d < 0", c.MaxRecordBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SegmentBytes == 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = d.MaxRecordBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WAL is an append-only log of framed records in numbered segment files.
// It is not safe for concurrent use: one goroutine (the raft loop) owns it.
type WAL struct {
	dir  string
	cfg  Config
	log  *slog.Logger
	f    *os.File // current (last) segment, opened for writing at its end
	seqs []uint64 // live segments, ascending; the last one is f
	size int64    // bytes in f
	buf  []byte   // framed records not yet written
	err  error    // sticky write/sync failure
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(base) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(base, 16, 64)
	return seq, err == nil
}

// Open opens (creating if needed) the WAL in dir and replays it: fn is called
// for every valid record of the live segments, in order. A torn or corrupt
// record in the last segment ends the log: the segment is truncated there
// and later bytes are dropped. A bad record in an earlier segment is an
// error wrapping ErrCorrupt, since a sealed segment was fully synced before
// the next one was created. The Data passed to fn is only valid during the call.
func Open(dir string, cfg Config, fn func(Record) error) (*WAL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &WAL{dir: dir, cfg: cfg, log: cfg.Logger.With("wal_dir", dir)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	seqs, err := w.listAndClean()
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		if err := w.createSegment(1); err != nil {
			return nil, err
		}
		return w, nil
	}
	w.seqs = seqs
	for i, seq := range seqs {
		last := i == len(seqs)-1
		if err := w.replaySegment(seq, last, fn); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, segmentName(seqs[len(seqs)-1]))
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: seek %s: %w", path, err)
	}
	w.f, w.size = f, size
	return w, nil
}

// listAndClean removes temporary files and segments that precede the last
// checkpoint (left behind by a crash during Checkpoint), and returns the live
// segment numbers in ascending order.
func (w *WAL) listAndClean() ([]uint64, error) {
	des, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, fsutil.TmpExt) {
			if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
				return nil, fmt.Errorf("wal: remove %s: %w", name, err)
			}
			continue
		}
		if seq, ok := parseSegmentName(name); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	start := 0
	for i := len(seqs) - 1; i > 0; i-- {
		reset, err := w.startsWithReset(seqs[i])
		if err != nil {
			return nil, err
		}
		if reset {
			start = i
			break
		}
	}
	for _, seq := range seqs[:start] {
		if err := os.Remove(filepath.Join(w.dir, segmentName(seq))); err != nil {
			return nil, fmt.Errorf("wal: remove stale segment: %w", err)
		}
		w.log.Info("removed segment preceding checkpoint", "segment", seq)
	}
	return seqs[start:], nil
}

func (w *WAL) startsWithReset(seq uint64) (bool, error) {
	f, err := os.Open(filepath.Join(w.dir, segmentName(seq)))
	if err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	var b [RecordHeaderSize + 1]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false, nil // too short to hold a reset record
	}
	rec, _, err := DecodeRecord(b[:], 1)
	return err == nil && rec.Type == typeReset, nil
}

func (w *WAL) replaySegment(seq uint64, last bool, fn func(Record) error) error {
	path := filepath.Join(w.dir, segmentName(seq))
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	off := 0
	for off < len(b) {
		rec, n, err := DecodeRecord(b[off:], w.cfg.MaxRecordBytes)
		if err != nil {
			if !last {
				return fmt.Errorf("wal: segment %s at %d: %w", segmentName(seq), off, err)
			}
			w.log.Warn("truncating torn wal tail", "segment", seq, "offset", off, "dropped_bytes", len(b)-off, "err", err)
			if err := os.Truncate(path, int64(off)); err != nil {
				return fmt.Errorf("wal: truncate %s: %w", path, err)
			}
			return nil
		}
		off += n
		if rec.Type == typeReset {
			continue
		}
		if err := fn(rec); err != nil {
			return fmt.Errorf("wal: segment %s at %d: %w", segmentName(seq), off-n, err)
		}
	}
	return nil
}

func (w *WAL) createSegment(seq uint64) error {
	path := filepath.Join(w.dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			f.Close()
			return fmt.Errorf("wal: close segment: %w", err)
		}
	}
	w.f, w.size = f, 0
	w.seqs = append(w.seqs, seq)
	return nil
}

// Append frames records into the pending buffer. Nothing reaches the file
// until Sync.
func (w *WAL) Append(recs ...Record) error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return ErrClosed
	}
	for _, r := range recs {
		if 1+len(r.Data) > w.cfg.MaxRecordBytes {
			return fmt.Errorf("wal: record of %d bytes exceeds %d", len(r.Data), w.cfg.MaxRecordBytes)
		}
		w.buf = AppendRecord(w.buf, r)
	}
	return nil
}

// Sync writes the pending records and fsyncs the segment. When it returns
// nil every record appended so far is durable. A write or sync failure is
// sticky: the WAL refuses further work, since the file's state is unknown.
func (w *WAL) Sync() error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return ErrClosed
	}
	if len(w.buf) == 0 {
		return nil
	}
	if w.size > 0 && w.size+int64(len(w.buf)) > w.cfg.SegmentBytes {
		if err := w.createSegment(w.seqs[len(w.seqs)-1] + 1); err != nil {
			w.err = err
			return err
		}
	}
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("wal: write: %w", err)
		return w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("wal: fsync: %w", err)
		return w.err
	}
	w.size += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// Checkpoint starts a new segment holding exactly recs (behind an internal
// reset record) and deletes every earlier segment. recs must restate all
// state the caller still needs; after Checkpoint a replay yields only them
// and what is appended later. The new segment is written to a temporary
// file, fsynced and renamed, so a crash leaves either the old segments or
// the complete checkpoint. Pending records are synced first.
func (w *WAL) Checkpoint(recs []Record) error {
	if err := w.Sync(); err != nil {
		return err
	}
	seq := w.seqs[len(w.seqs)-1] + 1
	b := AppendRecord(nil, Record{Type: typeReset})
	for _, r := range recs {
		b = AppendRecord(b, r)
	}
	final := filepath.Join(w.dir, segmentName(seq))
	if err := fsutil.WriteFileAtomic(w.dir, segmentName(seq), b); err != nil {
		w.err = fmt.Errorf("wal: write checkpoint: %w", err)
		return w.err
	}
	f, err := os.OpenFile(final, os.O_RDWR, 0o644)
	if err == nil {
		_, err = f.Seek(0, io.SeekEnd)
	}
	if err != nil {
		w.err = fmt.Errorf("wal: reopen checkpoint: %w", err)
		return w.err
	}
	old := w.seqs
	w.f.Close()
	w.f, w.size, w.seqs = f, int64(len(b)), []uint64{seq}
	for _, s := range old {
		if err := os.Remove(filepath.Join(w.dir, segmentName(s))); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Harmless: Open removes segments that precede a checkpoint.
			w.log.Warn("remove released segment", "segment", s, "err", err)
		}
	}
	return nil
}

// Segments returns the number of live segment files.
func (w *WAL) Segments() int { return len(w.seqs) }

// Close syncs pending records and closes the current segment. It is idempotent.
func (w *WAL) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.Sync()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: close: %w", cerr)
	}
	w.f = nil
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

func syncDir(dir string) error {
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}
