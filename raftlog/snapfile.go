package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/internal/fsutil"
	"github.com/sluice-io/sluice/raftlog/wal"
)

// Snapshot file: one WAL-framed record of type wal.TypeSnapshotFile whose
// payload is
//
//	index u64 | term u64 | confstate length u32 | confstate (protobuf) | data ...
//
// named <index %016x>-<term %016x>.snap and written by fsutil.WriteFileAtomic.

const snapExt = ".snap"

func snapName(index, term uint64) string { return fmt.Sprintf("%016x-%016x%s", index, term, snapExt) }

func parseSnapName(name string) (index, term uint64, ok bool) {
	base, ok := strings.CutSuffix(name, snapExt)
	if !ok || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	i, err1 := strconv.ParseUint(base[:16], 16, 64)
	t, err2 := strconv.ParseUint(base[17:], 16, 64)
	return i, t, err1 == nil && err2 == nil
}

func encodeSnapshot(s *raftpb.Snapshot) ([]byte, error) {
	cs, err := proto.MarshalOptions{Deterministic: true}.Marshal(s.GetMetadata().GetConfState())
	if err != nil {
		return nil, fmt.Errorf("raftlog: marshal conf state: %w", err)
	}
	p := make([]byte, 20, 20+len(cs)+len(s.GetData()))
	binary.LittleEndian.PutUint64(p[0:8], s.GetMetadata().GetIndex())
	binary.LittleEndian.PutUint64(p[8:16], s.GetMetadata().GetTerm())
	binary.LittleEndian.PutUint32(p[16:20], uint32(len(cs)))
	p = append(p, cs...)
	p = append(p, s.GetData()...)
	return wal.AppendRecord(nil, wal.Record{Type: wal.TypeSnapshotFile, Data: p}), nil
}

func decodeSnapshot(b []byte) (*raftpb.Snapshot, error) {
	rec, n, err := wal.DecodeRecord(b, len(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	if n != len(b) || rec.Type != wal.TypeSnapshotFile || len(rec.Data) < 20 {
		return nil, fmt.Errorf("%w: bad framing", ErrCorruptSnapshot)
	}
	p := rec.Data
	csLen := uint64(binary.LittleEndian.Uint32(p[16:20]))
	if csLen > uint64(len(p)-20) {
		return nil, fmt.Errorf("%w: conf state length %d", ErrCorruptSnapshot, csLen)
	}
	cs := &raftpb.ConfState{}
	if err := proto.Unmarshal(p[20:20+csLen], cs); err != nil {
		return nil, fmt.Errorf("%w: conf state: %w", ErrCorruptSnapshot, err)
	}
	s := &raftpb.Snapshot{
		Metadata: &raftpb.SnapshotMetadata{
			Index:     new(binary.LittleEndian.Uint64(p[0:8])),
			Term:      new(binary.LittleEndian.Uint64(p[8:16])),
			ConfState: raftpb.EnsureConfState(cs),
		},
		Data: slices.Clone(p[20+csLen:]),
	}
	return s, nil
}

func writeSnapshotFile(dir string, s *raftpb.Snapshot) error {
	b, err := encodeSnapshot(s)
	if err != nil {
		return err
	}
	name := snapName(s.GetMetadata().GetIndex(), s.GetMetadata().GetTerm())
	if err := fsutil.WriteFileAtomic(dir, name, b); err != nil {
		return fmt.Errorf("raftlog: write snapshot: %w", err)
	}
	return nil
}

func readSnapshotFile(dir string, index, term uint64) (*raftpb.Snapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, snapName(index, term)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: snapshot %d/%d", ErrMissingSnapshot, index, term)
	}
	if err != nil {
		return nil, fmt.Errorf("raftlog: read snapshot: %w", err)
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d/%d: %w", index, term, err)
	}
	if s.GetMetadata().GetIndex() != index || s.GetMetadata().GetTerm() != term {
		return nil, fmt.Errorf("%w: file %s holds %d/%d", ErrCorruptSnapshot, snapName(index, term), s.GetMetadata().GetIndex(), s.GetMetadata().GetTerm())
	}
	return s, nil
}

// pruneSnapshots removes temporary files, snapshot files newer than the live
// one (written before a crash that kept their WAL marker from landing) and
// all but keep files at or below it.
func pruneSnapshots(dir string, live uint64, keep int) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	var older []string // names at or below live, ascending
	removed := false
	for _, de := range des {
		name := de.Name()
		idx, _, ok := parseSnapName(name)
		switch {
		case strings.HasSuffix(name, fsutil.TmpExt), ok && idx > live:
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("raftlog: %w", err)
			}
			removed = true
		case ok:
			older = append(older, name)
		}
	}
	slices.Sort(older) // fixed-width hex names sort by index
	for len(older) > keep {
		if err := os.Remove(filepath.Join(dir, older[0])); err != nil {
			return fmt.Errorf("raftlog: %w", err)
		}
		older = older[1:]
		removed = true
	}
	if removed {
		return fsutil.SyncDir(dir)
	}
	return nil
}
