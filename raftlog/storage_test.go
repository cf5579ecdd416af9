package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: raftpb.EntryType_EntryNormal.Enum(), Data: []byte(data)}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func openT(t *testing.T, dir string) *Storage {
	t.Helper()
	st, err := OpenStorage(dir, StorageConfig{})
	if err != nil {
		t.Fatalf("OpenStorage: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStorageOverwriteSuffix(t *testing.T) {
	dir := t.TempDir()
	st := openT(t, dir)
	if err := st.Save(hardState(1, 1, 2), []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(hardState(2, 2, 3), []*raftpb.Entry{ent(3, 2, "C"), ent(4, 2, "D")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(nil, []*raftpb.Entry{ent(4, 3, "DD")}, nil); err != nil {
		t.Fatal(err)
	}
	want, wantHS := storedLog(t, st)
	st.Close()
	st = openT(t, dir)
	got, hs := storedLog(t, st)
	if !slices.Equal(got, want) || hs != wantHS {
		t.Fatalf("reopened log %v %v, want %v %v", got, hs, want, wantHS)
	}
	if len(got) != 4 || got[2].Data != "C" || got[3].Data != "DD" || hs != [3]uint64{2, 2, 3} {
		t.Fatalf("unexpected log %v %v", got, hs)
	}
}

func TestStorageSnapshotAndCompact(t *testing.T) {
	dir := t.TempDir()
	st := openT(t, dir)
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, ent(i, 1, "x"))
	}
	if err := st.Save(hardState(1, 1, 8), ents, nil); err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	if _, err := st.CreateSnapshot(9, cs, []byte("state")); !errors.Is(err, ErrBeyondLog) {
		t.Fatalf("CreateSnapshot past commit = %v, want ErrBeyondLog", err)
	}
	if err := st.Compact(3); !errors.Is(err, ErrBeyondLog) {
		t.Fatalf("Compact without snapshot = %v, want ErrBeyondLog", err)
	}
	if _, err := st.CreateSnapshot(6, cs, []byte("state6")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSnapshot(5, cs, nil); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("older CreateSnapshot = %v, want ErrSnapOutOfDate", err)
	}
	if err := st.Compact(6); err != nil {
		t.Fatal(err)
	}
	if err := st.Compact(7); !errors.Is(err, ErrBeyondLog) {
		t.Fatalf("Compact past snapshot = %v, want ErrBeyondLog", err)
	}
	if _, err := st.Entries(5, 7, 1<<20); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries(compacted) = %v", err)
	}
	st.Close()

	st = openT(t, dir)
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	snap, _ := st.Snapshot()
	if first != 7 || last != 10 || snap.GetMetadata().GetIndex() != 6 || string(snap.GetData()) != "state6" ||
		!slices.Equal(snap.GetMetadata().GetConfState().GetVoters(), []uint64{1}) {
		t.Fatalf("reopened first=%d last=%d snap=%v", first, last, snap)
	}
	if term, err := st.Term(6); err != nil || term != 1 {
		t.Fatalf("Term(6) = %d, %v", term, err)
	}
}

func TestStorageReceivedSnapshotResetsLog(t *testing.T) {
	dir := t.TempDir()
	st := openT(t, dir)
	if err := st.Save(hardState(1, 1, 2), []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "stale")}, nil); err != nil {
		t.Fatal(err)
	}
	snap := &raftpb.Snapshot{Data: []byte("leader"), Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(20)), Term: new(uint64(3)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	if err := st.Save(hardState(3, 0, 20), []*raftpb.Entry{ent(21, 3, "next")}, snap); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openT(t, dir)
	got, hs := storedLog(t, st)
	if len(got) != 1 || got[0].Index != 21 || hs != [3]uint64{3, 0, 20} {
		t.Fatalf("after snapshot: %v %v", got, hs)
	}
	if s, _ := st.Snapshot(); s.GetMetadata().GetIndex() != 20 || string(s.GetData()) != "leader" {
		t.Fatalf("snapshot %v", s)
	}
}

func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "snap", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestStorageSnapshotFiles(t *testing.T) {
	dir := t.TempDir()
	st := openT(t, dir)
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, ent(i, 2, "x"))
	}
	if err := st.Save(hardState(2, 1, 10), ents, nil); err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{2, 4, 6} {
		if _, err := st.CreateSnapshot(i, &raftpb.ConfState{Voters: []uint64{1}}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := snapFiles(t, dir), []string{snapName(4, 2), snapName(6, 2)}; !slices.Equal(got, want) {
		t.Fatalf("snapshot files %v, want %v (KeepSnapshots=2)", got, want)
	}
	st.Close()

	// A snapshot file whose WAL marker never landed is ignored and removed.
	orphan := &raftpb.Snapshot{Data: []byte("orphan"), Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(9)), Term: new(uint64(2)), ConfState: &raftpb.ConfState{}}}
	if err := writeSnapshotFile(filepath.Join(dir, "snap"), orphan); err != nil {
		t.Fatal(err)
	}
	st = openT(t, dir)
	if st.SnapshotIndex() != 6 {
		t.Fatalf("snapshot index %d, want 6", st.SnapshotIndex())
	}
	if got := snapFiles(t, dir); slices.Contains(got, snapName(9, 2)) {
		t.Fatalf("orphan snapshot kept: %v", got)
	}
	st.Close()

	// The live snapshot file corrupt or missing fails the open.
	live := filepath.Join(dir, "snap", snapName(6, 2))
	b, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x80
	if err := os.WriteFile(live, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStorage(dir, StorageConfig{}); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("open with corrupt snapshot = %v, want ErrCorruptSnapshot", err)
	}
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStorage(dir, StorageConfig{}); !errors.Is(err, ErrMissingSnapshot) {
		t.Fatalf("open with missing snapshot = %v, want ErrMissingSnapshot", err)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	good, _ := encodeSnapshot(&raftpb.Snapshot{Data: []byte("d"), Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(3)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}})
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err == nil && s.GetMetadata() == nil {
			t.Fatal("nil metadata without error")
		}
	})
}

// TestStorageCrashDuringSave cuts the WAL at every byte of the last Save
// batch: reopening always succeeds and yields the state before that Save
// plus a prefix of its entries, never anything else.
func TestStorageCrashDuringSave(t *testing.T) {
	dir := t.TempDir()
	st := openT(t, dir)
	if err := st.Save(hardState(1, 1, 2), []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	before, hsBefore := storedLog(t, st)
	seg := filepath.Join(dir, "wal", "0000000000000001.wal")
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	goodLen := fi.Size()
	if err := st.Save(hardState(2, 2, 4), []*raftpb.Entry{ent(3, 2, "C"), ent(4, 2, "D")}, nil); err != nil {
		t.Fatal(err)
	}
	after, hsAfter := storedLog(t, st)
	st.Close()
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for cut := goodLen; cut < int64(len(full)); cut++ {
		cdir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(cdir, "wal"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cdir, "wal", filepath.Base(seg)), full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		cst, err := OpenStorage(cdir, StorageConfig{})
		if err != nil {
			t.Fatalf("cut %d: OpenStorage: %v", cut, err)
		}
		got, hs := storedLog(t, cst)
		cst.Close()
		// Entries C and D replace c from index 3: a torn batch shows before,
		// or before with c replaced by C (then D), and the old HardState.
		ok := slices.Equal(got, before) ||
			slices.Equal(got, append(slices.Clone(before[:2]), after[2])) ||
			slices.Equal(got, after)
		if !ok || (hs != hsBefore && hs != hsAfter) || (hs == hsAfter && !slices.Equal(got, after)) {
			t.Fatalf("cut %d: log %v hs %v", cut, got, hs)
		}
	}
}
