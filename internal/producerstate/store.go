package producerstate

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/fsutil"
)

// SnapshotSuffix is the extension of snapshot files (as Kafka's ".snapshot").
const SnapshotSuffix = ".snapshot"

// snapshotDigits is the zero-padded width of the offset in a file name.
const snapshotDigits = 20

// SnapshotFileName returns the name of the snapshot taken at offset:
// the offset as 20 zero-padded decimal digits plus ".snapshot", the naming
// Kafka uses for producer snapshots next to its segments. offset must be >= 0.
func SnapshotFileName(offset int64) string {
	return fmt.Sprintf("%020d%s", offset, SnapshotSuffix)
}

// ParseSnapshotFileName returns the offset encoded in a snapshot file name,
// and false for any other name (including leftover temporary files).
func ParseSnapshotFileName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, SnapshotSuffix)
	if !ok || len(digits) != snapshotDigits {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	off, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return off, true
}

// StoreConfig configures a snapshot Store.
type StoreConfig struct {
	// Keep is how many snapshots Save leaves in the directory (the newest
	// ones, by offset). Must be >= 1; the zero value is invalid.
	Keep int
	// Logger receives a warning for each corrupt snapshot Load deletes.
	// nil discards.
	Logger *slog.Logger
}

// DefaultStoreConfig returns the defaults.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{
		// Two older snapshots let a truncation below the newest one still
		// start from a snapshot instead of the log start.
		Keep: 3,
	}
}

// Validate reports a configuration error.
func (c StoreConfig) Validate() error {
	if c.Keep < 1 {
		return fmt.Errorf("producerstate: StoreConfig.Keep = %d, must be >= 1", c.Keep)
	}
	return nil
}

// Store keeps producer-state snapshot files in one directory, normally the
// partition's log directory. It holds no open files. Its methods must not run
// concurrently with each other on the same directory; the partition's writer
// (or one snapshot goroutine it owns) calls them.
type Store struct {
	dir string
	cfg StoreConfig
	log *slog.Logger
}

// OpenStore returns a Store for dir, creating dir if needed and removing
// temporary snapshot files left by a crash during Save.
func OpenStore(dir string, cfg StoreConfig) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("producerstate: open store %s: %w", dir, err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("producerstate: open store %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		if base, ok := strings.CutSuffix(name, fsutil.TmpExt); ok {
			if _, ok := ParseSnapshotFileName(base); ok {
				if err := removeIfExists(filepath.Join(dir, name)); err != nil {
					return nil, fmt.Errorf("producerstate: remove %s: %w", name, err)
				}
			}
		}
	}
	return &Store{dir: dir, cfg: cfg, log: log}, nil
}

// Dir returns the store's directory.
func (st *Store) Dir() string { return st.dir }

// Path returns the path of the snapshot file for offset.
func (st *Store) Path(offset int64) string { return filepath.Join(st.dir, SnapshotFileName(offset)) }

// Offsets returns the offsets of the snapshot files present, ascending.
func (st *Store) Offsets() ([]int64, error) {
	des, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, fmt.Errorf("producerstate: list %s: %w", st.dir, err)
	}
	var offs []int64
	for _, de := range des {
		if off, ok := ParseSnapshotFileName(de.Name()); ok && de.Type().IsRegular() {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// Save writes s as the snapshot at offset, atomically and durably (temporary
// file, fsync, rename, directory fsync), replacing any snapshot at the same
// offset, then deletes all but the newest Keep snapshots. A snapshot saved
// below Keep newer ones is deleted at once; after a log truncation call
// DeleteAbove first.
func (st *Store) Save(s *State, offset int64) error {
	data, err := s.AppendSnapshot(nil, offset)
	if err != nil {
		return fmt.Errorf("producerstate: save snapshot at %d: %w", offset, err)
	}
	if err := fsutil.WriteFileAtomic(st.dir, SnapshotFileName(offset), data); err != nil {
		return fmt.Errorf("producerstate: save snapshot at %d: %w", offset, err)
	}
	offs, err := st.Offsets()
	if err != nil {
		return err
	}
	if len(offs) > st.cfg.Keep {
		return st.remove(offs[:len(offs)-st.cfg.Keep])
	}
	return nil
}

// Load returns the state from the newest valid snapshot whose offset is at
// most maxOffset, and that offset. Snapshots found corrupt on the way are
// deleted (and logged), as Kafka's ProducerStateManager does, and the next
// older one is tried. found is false when no valid snapshot remains; the
// caller then rebuilds the state by replaying the log from its start.
// Snapshots above maxOffset are left alone.
func (st *Store) Load(maxOffset int64) (s *State, offset int64, found bool, err error) {
	offs, err := st.Offsets()
	if err != nil {
		return nil, 0, false, err
	}
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		if off > maxOffset {
			continue
		}
		s, err := st.read(off)
		if err == nil {
			return s, off, true, nil
		}
		if !errors.Is(err, ErrCorruptSnapshot) {
			return nil, 0, false, err
		}
		st.log.Warn("deleting corrupt producer snapshot", "path", st.Path(off), "err", err)
		if err := removeIfExists(st.Path(off)); err != nil {
			return nil, 0, false, fmt.Errorf("producerstate: remove corrupt snapshot: %w", err)
		}
	}
	return nil, 0, false, nil
}

// read loads one snapshot file; a file whose content names another offset
// than its file name is corrupt.
func (st *Store) read(off int64) (*State, error) {
	path := st.Path(off)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("producerstate: %w", err)
	}
	defer f.Close()
	s, got, err := ReadSnapshot(f)
	if err != nil {
		return nil, fmt.Errorf("producerstate: %s: %w", path, err)
	}
	if got != off {
		return nil, fmt.Errorf("producerstate: %s: holds offset %d: %w", path, got, ErrCorruptSnapshot)
	}
	return s, nil
}

// DeleteAbove deletes snapshots with offset > offset (after the log was
// truncated to offset; Kafka's truncateAndReload does the same).
func (st *Store) DeleteAbove(offset int64) error {
	offs, err := st.Offsets()
	if err != nil {
		return err
	}
	if offset == math.MaxInt64 {
		return nil
	}
	i, _ := slices.BinarySearch(offs, offset+1)
	return st.remove(offs[i:])
}

// DeleteBelow deletes snapshots with offset < offset (Kafka's
// deleteSnapshotsBefore, used when the log start moves past them).
func (st *Store) DeleteBelow(offset int64) error {
	offs, err := st.Offsets()
	if err != nil {
		return err
	}
	i, _ := slices.BinarySearch(offs, offset)
	return st.remove(offs[:i])
}

// DeleteAll deletes every snapshot (log truncated fully).
func (st *Store) DeleteAll() error {
	offs, err := st.Offsets()
	if err != nil {
		return err
	}
	return st.remove(offs)
}

func (st *Store) remove(offs []int64) error {
	for _, off := range offs {
		if err := removeIfExists(st.Path(off)); err != nil {
			return fmt.Errorf("producerstate: delete snapshot: %w", err)
		}
	}
	return nil
}
