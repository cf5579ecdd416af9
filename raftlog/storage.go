package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-io/sluice/raftlog/wal"
)

var (
	// ErrCorruptSnapshot reports a snapshot file that fails its CRC or does
	// not decode.
	ErrCorruptSnapshot = errors.New("raftlog: corrupt snapshot file")
	// ErrMissingSnapshot reports that the WAL names a snapshot whose file is
	// gone: the data directory was damaged.
	ErrMissingSnapshot = errors.New("raftlog: snapshot file missing")
	// ErrCorruptLog reports WAL records that do not form a raft log (an entry
	// leaves a gap after the previous one).
	ErrCorruptLog = errors.New("raftlog: corrupt log")
	// ErrBeyondLog reports a CreateSnapshot or Compact index that the
	// storage cannot honour (past the committed or last index, or a Compact
	// past the latest snapshot).
	ErrBeyondLog = errors.New("raftlog: index beyond log")
)

// StorageConfig holds the settings of a Storage.
type StorageConfig struct {
	// WAL configures the write-ahead log under <dir>/wal.
	WAL wal.Config
	// KeepSnapshots is how many snapshot files are kept under <dir>/snap,
	// the live one included. 0 means DefaultStorageConfig's value.
	KeepSnapshots int
	// SnapshotEntries is the snapshot policy the raft loop follows: take a
	// snapshot once this many entries were applied since the last one (see
	// ShouldSnapshot). 0 means DefaultStorageConfig's value.
	SnapshotEntries uint64
	// Logger receives recovery messages. nil discards them.
	Logger *slog.Logger
}

// DefaultStorageConfig returns the default storage settings.
func DefaultStorageConfig() StorageConfig {
	return StorageConfig{
		WAL:             wal.DefaultConfig(),
		KeepSnapshots:   2,      // the live snapshot and its predecessor, for inspection
		SnapshotEntries: 10_000, // metadata commands are small; this bounds replay on restart
	}
}

// Validate rejects settings that cannot work.
func (c StorageConfig) Validate() error {
	if err := c.WAL.Validate(); err != nil {
		return err
	}
	if c.KeepSnapshots < 0 {
		return fmt.Errorf("raftlog: KeepSnapshots %d < 0", c.KeepSnapshots)
	}
	return nil
}

func (c StorageConfig) withDefaults() StorageConfig {
	d := DefaultStorageConfig()
	if c.KeepSnapshots == 0 {
		c.KeepSnapshots = d.KeepSnapshots
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = d.SnapshotEntries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.WAL.Logger == nil {
		c.WAL.Logger = c.Logger
	}
	return c
}

// Storage is a durable raft.Storage: an in-memory raft.MemoryStorage rebuilt
// on open from the live snapshot file plus the WAL, and kept in step with it
// by Save, CreateSnapshot and Compact.
//
// The raft.Storage methods are safe for concurrent use. Save,
// CreateSnapshot, Compact and Close belong to the one goroutine that runs
// the raft Ready loop.
type Storage struct {
	cfg     StorageConfig
	snapDir string
	ms      *raft.MemoryStorage

	mu   sync.Mutex // guards w and hs against each other's writers
	w    *wal.WAL
	hs   *raftpb.HardState
	snap wal.SnapshotMarker // live snapshot (zero: none)
}

var _ raft.Storage = (*Storage)(nil)

// walDir is the WAL's subdirectory of a storage directory.
const walDir = "wal"

// StorageEmpty reports whether the raft storage in dir has never been written (no WAL segment):
// a new node, or one whose data directory was wiped.
func StorageEmpty(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, walDir))
	return err != nil || len(entries) == 0
}

// OpenStorage opens or creates the storage under dir (subdirectories wal
// and snap) and rebuilds the raft log from it.
func OpenStorage(dir string, cfg StorageConfig) (*Storage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Storage{cfg: cfg, snapDir: filepath.Join(dir, "snap"), ms: raft.NewMemoryStorage()}
	if err := os.MkdirAll(s.snapDir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}

	var (
		hs   *raftpb.HardState
		base wal.SnapshotMarker
		ents []*raftpb.Entry
	)
	replay := func(r wal.Record) error {
		switch r.Type {
		case wal.TypeSnapshot:
			m, err := wal.DecodeSnapshotMarker(r.Data)
			if err != nil {
				return err
			}
			base, ents = m, ents[:0]
		case wal.TypeHardState:
			h, err := wal.DecodeHardState(r.Data)
			if err != nil {
				return err
			}
			hs = h
		case wal.TypeEntry:
			e, err := wal.DecodeEntry(r.Data)
			if err != nil {
				return err
			}
			idx := e.GetIndex()
			if idx <= base.Index {
				return nil
			}
			last := base.Index + uint64(len(ents))
			if idx > last+1 {
				return fmt.Errorf("%w: entry %d after last index %d", ErrCorruptLog, idx, last)
			}
			ents = append(ents[:idx-base.Index-1], e)
		default:
			return fmt.Errorf("%w: unexpected %v record", wal.ErrCorrupt, r.Type)
		}
		return nil
	}
	w, err := wal.Open(filepath.Join(dir, walDir), cfg.WAL, replay)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
	}
	s.w, s.snap = w, base
	if base.Index > 0 {
		snap, err := readSnapshotFile(s.snapDir, base.Index, base.Term)
		if err == nil {
			err = s.ms.ApplySnapshot(snap)
		}
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
		}
	}
	if err := pruneSnapshots(s.snapDir, base.Index, cfg.KeepSnapshots); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.ms.Append(ents); err != nil {
		w.Close()
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	if hs != nil {
		s.hs = hs
		if err := s.ms.SetHardState(hs); err != nil {
			w.Close()
			return nil, fmt.Errorf("raftlog: %w", err)
		}
	}
	cfg.Logger.Info("raft storage opened", "dir", dir, "snapshot_index", base.Index,
		"first_index", base.Index+1, "last_index", base.Index+uint64(len(ents)), "commit", hs.GetCommit())
	return s, nil
}

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	return s.ms.InitialState()
}

// Entries implements raft.Storage.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	return s.ms.Entries(lo, hi, maxSize)
}

// Term implements raft.Storage.
func (s *Storage) Term(i uint64) (uint64, error) { return s.ms.Term(i) }

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) { return s.ms.LastIndex() }

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) { return s.ms.FirstIndex() }

// Snapshot implements raft.Storage.
func (s *Storage) Snapshot() (*raftpb.Snapshot, error) { return s.ms.Snapshot() }

// Save persists one Ready's worth of state and returns only once it is
// durable (fsynced): the snapshot if not empty (file first, then a WAL
// checkpoint that restarts the log at it), then the entries (replacing any
// stored suffix from the first new index on) and the HardState if not empty.
// Callers send the Ready's messages only after Save returns nil.
func (s *Storage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !raft.IsEmptySnap(snap) {
		if err := s.saveSnapshot(hs, snap); err != nil {
			return err
		}
	}
	var buf []byte
	dirty := false
	for _, e := range ents {
		buf = wal.EntryRecord(buf[:0], e)
		if err := s.w.Append(wal.Record{Type: wal.TypeEntry, Data: buf}); err != nil {
			return fmt.Errorf("raftlog: save: %w", err)
		}
		dirty = true
	}
	if !raft.IsEmptyHardState(hs) {
		if err := s.w.Append(wal.Record{Type: wal.TypeHardState, Data: wal.HardStateRecord(nil, hs)}); err != nil {
			return fmt.Errorf("raftlog: save: %w", err)
		}
		dirty = true
	}
	if dirty {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("raftlog: save: %w", err)
		}
	}
	if err := s.ms.Append(ents); err != nil {
		return fmt.Errorf("raftlog: save: %w", err)
	}
	if !raft.IsEmptyHardState(hs) {
		s.hs = hs
		if err := s.ms.SetHardState(hs); err != nil {
			return fmt.Errorf("raftlog: save: %w", err)
		}
	}
	return nil
}

// saveSnapshot installs a snapshot received from the leader: it replaces
// the whole log, as raft.MemoryStorage.ApplySnapshot does.
func (s *Storage) saveSnapshot(hs *raftpb.HardState, snap *raftpb.Snapshot) error {
	m := wal.SnapshotMarker{Index: snap.GetMetadata().GetIndex(), Term: snap.GetMetadata().GetTerm()}
	if err := writeSnapshotFile(s.snapDir, snap); err != nil {
		return err
	}
	if raft.IsEmptyHardState(hs) {
		hs = s.hs
	}
	recs := []wal.Record{{Type: wal.TypeSnapshot, Data: wal.SnapshotRecord(nil, m)}}
	if !raft.IsEmptyHardState(hs) {
		recs = append(recs, wal.Record{Type: wal.TypeHardState, Data: wal.HardStateRecord(nil, hs)})
	}
	if err := s.w.Checkpoint(recs); err != nil {
		return fmt.Errorf("raftlog: save snapshot: %w", err)
	}
	if err := s.ms.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("raftlog: save snapshot: %w", err)
	}
	s.snap = m
	return s.prune()
}

// CreateSnapshot records the state machine's state data as of the applied
// index (cs being the ConfState as of that index), makes it durable and
// releases the WAL before it: the WAL is rewritten as a checkpoint holding
// the snapshot marker, the HardState and the entries after index. index
// must not exceed the committed index. It returns raft.ErrSnapOutOfDate for
// an index at or below the current snapshot.
func (s *Storage) CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, _ := s.ms.LastIndex()
	if index > last || index > s.hs.GetCommit() {
		return nil, fmt.Errorf("%w: snapshot at %d, last %d, commit %d", ErrBeyondLog, index, last, s.hs.GetCommit())
	}
	snap, err := s.ms.CreateSnapshot(index, cs, data)
	if err != nil {
		return nil, err
	}
	if err := writeSnapshotFile(s.snapDir, snap); err != nil {
		return nil, err
	}
	m := wal.SnapshotMarker{Index: index, Term: snap.GetMetadata().GetTerm()}
	recs := []wal.Record{
		{Type: wal.TypeSnapshot, Data: wal.SnapshotRecord(nil, m)},
		{Type: wal.TypeHardState, Data: wal.HardStateRecord(nil, s.hs)},
	}
	if index < last {
		ents, err := s.ms.Entries(index+1, last+1, ^uint64(0))
		if err != nil {
			return nil, fmt.Errorf("raftlog: create snapshot: %w", err)
		}
		for _, e := range ents {
			recs = append(recs, wal.Record{Type: wal.TypeEntry, Data: wal.EntryRecord(nil, e)})
		}
	}
	if err := s.w.Checkpoint(recs); err != nil {
		return nil, fmt.Errorf("raftlog: create snapshot: %w", err)
	}
	s.snap = m
	return snap, s.prune()
}

func (s *Storage) prune() error {
	return pruneSnapshots(s.snapDir, s.snap.Index, s.cfg.KeepSnapshots)
}

// Compact drops in-memory entries up to index, which must not pass the
// latest snapshot (raft would otherwise have neither entries nor a snapshot
// for a follower behind it). Disk space is released by CreateSnapshot.
// Returns raft.ErrCompacted when index is already compacted.
func (s *Storage) Compact(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index > s.snap.Index {
		return fmt.Errorf("%w: compact to %d past snapshot %d", ErrBeyondLog, index, s.snap.Index)
	}
	return s.ms.Compact(index)
}

// ShouldSnapshot reports whether the snapshot policy (SnapshotEntries)
// calls for a snapshot at applied.
func (s *Storage) ShouldSnapshot(applied uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return applied >= s.snap.Index+s.cfg.SnapshotEntries
}

// SnapshotIndex returns the index of the live snapshot (0: none).
func (s *Storage) SnapshotIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap.Index
}

// WALSegments returns the number of WAL segment files in use.
func (s *Storage) WALSegments() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Segments()
}

// Close closes the WAL. It is idempotent.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Close()
}
