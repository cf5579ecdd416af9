package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-io/sluice/internal/fsutil"
)

func payload(i int) []byte { return []byte(fmt.Sprintf("record-%03d", i)) }

func collect(t *testing.T, dir string, cfg Config) (*WAL, [][]byte) {
	t.Helper()
	var got [][]byte
	w, err := Open(dir, cfg, func(r Record) error {
		got = append(got, bytes.Clone(r.Data))
		return nil
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w, got
}

func writeN(t *testing.T, w *WAL, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := w.Append(Record{Type: TypeEntry, Data: payload(i)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func wantPayloads(t *testing.T, got [][]byte, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("replayed %d records, want %d", len(got), n)
	}
	for i := range got {
		if !bytes.Equal(got[i], payload(i)) {
			t.Fatalf("record %d = %q, want %q", i, got[i], payload(i))
		}
	}
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil || len(m) != 1 {
		t.Fatalf("segments %v, %v", m, err)
	}
	return m[0]
}

func TestWALReopen(t *testing.T) {
	dir := t.TempDir()
	w, got := collect(t, dir, Config{})
	wantPayloads(t, got, 0)
	writeN(t, w, 0, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := w.Append(Record{Type: TypeEntry}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	w, got = collect(t, dir, Config{})
	defer w.Close()
	wantPayloads(t, got, 10)
}

// TestWALTornTail cuts the last record at every byte and flips every bit of
// it: recovery keeps exactly the records before it, truncates the file, and
// accepts new appends.
func TestWALTornTail(t *testing.T) {
	base := t.TempDir()
	w, _ := collect(t, base, Config{})
	writeN(t, w, 0, 5)
	w.Close()
	full, err := os.ReadFile(onlySegment(t, base))
	if err != nil {
		t.Fatal(err)
	}
	lastLen := len(AppendRecord(nil, Record{Type: TypeEntry, Data: payload(4)}))
	goodLen := len(full) - lastLen

	check := func(t *testing.T, content []byte) {
		t.Helper()
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(1))
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		w, got := collect(t, dir, Config{})
		wantPayloads(t, got, 4)
		if fi, err := os.Stat(path); err != nil || fi.Size() != int64(goodLen) {
			t.Fatalf("after recovery size = %v (%v), want %d", fi.Size(), err, goodLen)
		}
		writeN(t, w, 4, 2)
		w.Close()
		w, got = collect(t, dir, Config{})
		wantPayloads(t, got, 6)
		w.Close()
	}
	for cut := goodLen; cut < len(full); cut++ {
		t.Run(fmt.Sprintf("cut%d", cut), func(t *testing.T) { check(t, full[:cut]) })
	}
	for bit := goodLen * 8; bit < len(full)*8; bit++ {
		t.Run(fmt.Sprintf("flip%d", bit), func(t *testing.T) {
			c := bytes.Clone(full)
			c[bit/8] ^= 1 << (bit % 8)
			check(t, c)
		})
	}
}

func TestWALCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := collect(t, dir, Config{SegmentBytes: 64})
	writeN(t, w, 0, 10)
	if w.Segments() < 3 {
		t.Fatalf("segments = %d, want rolling", w.Segments())
	}
	w.Close()
	w, got := collect(t, dir, Config{SegmentBytes: 64})
	wantPayloads(t, got, 10)
	w.Close()

	first := filepath.Join(dir, segmentName(1))
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x01
	if err := os.WriteFile(first, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Config{SegmentBytes: 64}, func(Record) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with corrupt sealed segment = %v, want ErrCorrupt", err)
	}
}

func TestWALCheckpoint(t *testing.T) {
	dir := t.TempDir()
	w, _ := collect(t, dir, Config{SegmentBytes: 64})
	writeN(t, w, 100, 10)
	// Restate records 0..2 as the whole log.
	var recs []Record
	for i := range 3 {
		recs = append(recs, Record{Type: TypeEntry, Data: payload(i)})
	}
	if err := w.Checkpoint(recs); err != nil {
		t.Fatal(err)
	}
	if w.Segments() != 1 {
		t.Fatalf("segments after checkpoint = %d, want 1", w.Segments())
	}
	writeN(t, w, 3, 2)
	w.Close()
	w, got := collect(t, dir, Config{SegmentBytes: 64})
	wantPayloads(t, got, 5)
	w.Close()
}

// TestWALCheckpointCrash simulates a crash after the checkpoint rename but
// before old segments were deleted, and one before the rename.
func TestWALCheckpointCrash(t *testing.T) {
	dir := t.TempDir()
	w, _ := collect(t, dir, Config{})
	writeN(t, w, 0, 4)
	w.Close()
	seg1, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}

	w, _ = collect(t, dir, Config{})
	if err := w.Checkpoint([]Record{{Type: TypeEntry, Data: payload(0)}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Crash before deletion: the old segment is back, plus an unrelated tmp file.
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg1, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(3)+fsutil.TmpExt), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, got := collect(t, dir, Config{})
	wantPayloads(t, got, 1)
	w.Close()
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	slices.Sort(names)
	if want := []string{filepath.Join(dir, segmentName(2))}; !slices.Equal(names, want) {
		t.Fatalf("files after recovery = %v, want %v", names, want)
	}
}

func TestWALReplayError(t *testing.T) {
	dir := t.TempDir()
	w, _ := collect(t, dir, Config{})
	writeN(t, w, 0, 2)
	w.Close()
	boom := errors.New("boom")
	if _, err := Open(dir, Config{}, func(Record) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Open = %v, want boom", err)
	}
}

func TestRaftPayloads(t *testing.T) {
	e := &raftpb.Entry{Term: new(uint64(3)), Index: new(uint64(7)), Type: raftpb.EntryType_EntryConfChange.Enum(), Data: []byte("cc")}
	got, err := DecodeEntry(EntryRecord(nil, e))
	if err != nil || got.GetTerm() != 3 || got.GetIndex() != 7 || got.GetType() != raftpb.EntryType_EntryConfChange || string(got.GetData()) != "cc" {
		t.Fatalf("DecodeEntry = %v, %v", got, err)
	}
	if _, err := DecodeEntry(make([]byte, 5)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short entry = %v", err)
	}
	bad := EntryRecord(nil, e)
	bad[16] = 9
	if _, err := DecodeEntry(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad entry type = %v", err)
	}
	hs := &raftpb.HardState{Term: new(uint64(4)), Vote: new(uint64(2)), Commit: new(uint64(9))}
	ghs, err := DecodeHardState(HardStateRecord(nil, hs))
	if err != nil || ghs.GetTerm() != 4 || ghs.GetVote() != 2 || ghs.GetCommit() != 9 {
		t.Fatalf("DecodeHardState = %v, %v", ghs, err)
	}
	m, err := DecodeSnapshotMarker(SnapshotRecord(nil, SnapshotMarker{Index: 5, Term: 2}))
	if err != nil || m != (SnapshotMarker{Index: 5, Term: 2}) {
		t.Fatalf("DecodeSnapshotMarker = %v, %v", m, err)
	}
}
