package producerstate

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/internal/fsutil"
)

func TestSnapshotFileName(t *testing.T) {
	cases := []struct {
		offset int64
		name   string
	}{
		{0, "00000000000000000000.snapshot"},
		{1234, "00000000000000001234.snapshot"},
		{math.MaxInt64, "09223372036854775807.snapshot"},
	}
	for _, tc := range cases {
		if got := SnapshotFileName(tc.offset); got != tc.name {
			t.Errorf("SnapshotFileName(%d) = %q, want %q", tc.offset, got, tc.name)
		}
		if off, ok := ParseSnapshotFileName(tc.name); !ok || off != tc.offset {
			t.Errorf("ParseSnapshotFileName(%q) = %d, %v", tc.name, off, ok)
		}
	}
	for _, bad := range []string{
		"", ".snapshot", "1234.snapshot", "00000000000000001234.snapshot.tmp", "00000000000000001234.log",
		"0000000000000000123x.snapshot", "+0000000000000001234.snapshot", "-0000000000000001234.snapshot",
		"99999999999999999999.snapshot", "000000000000000001234.snapshot",
	} {
		if off, ok := ParseSnapshotFileName(bad); ok {
			t.Errorf("ParseSnapshotFileName(%q) = %d, true; want false", bad, off)
		}
	}
}

func TestStoreConfigValidate(t *testing.T) {
	if err := DefaultStoreConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if _, err := OpenStore(t.TempDir(), StoreConfig{}); err == nil {
		t.Fatal("OpenStore with Keep 0 succeeded")
	}
}

func openStore(t *testing.T, dir string, keep int) *Store {
	t.Helper()
	cfg := DefaultStoreConfig()
	cfg.Keep = keep
	st, err := OpenStore(dir, cfg)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return st
}

func stateAt(n int) *State {
	s := New()
	for i := range n {
		s.Update(NewBatchMeta(int64(i%3), 0, int32(i), int64(i), 0, int64(i), false))
	}
	return s
}

func TestStoreSaveLoadAndRetention(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "partition-0")
	st := openStore(t, dir, 3)
	if s, off, found, err := st.Load(math.MaxInt64); err != nil || found || s != nil || off != 0 {
		t.Fatalf("Load on empty store = %v, %d, %v, %v", s, off, found, err)
	}
	for _, off := range []int64{10, 20, 30, 40, 50} {
		if err := st.Save(stateAt(int(off)), off); err != nil {
			t.Fatalf("Save(%d): %v", off, err)
		}
	}
	offs, err := st.Offsets()
	if err != nil || !slices.Equal(offs, []int64{30, 40, 50}) {
		t.Fatalf("Offsets after 5 saves with Keep 3 = %v, %v", offs, err)
	}
	for _, tc := range []struct {
		max, want int64
		found     bool
	}{
		{math.MaxInt64, 50, true}, {50, 50, true}, {49, 40, true}, {30, 30, true}, {29, 0, false},
	} {
		s, off, found, err := st.Load(tc.max)
		if err != nil || found != tc.found || off != tc.want {
			t.Fatalf("Load(%d) = %d, %v, %v; want %d, %v", tc.max, off, found, err, tc.want, tc.found)
		}
		if found && !reflect.DeepEqual(s.Producers(), stateAt(int(off)).Producers()) {
			t.Fatalf("Load(%d) state differs from the saved one", tc.max)
		}
	}
	// Loading never deletes valid snapshots above maxOffset.
	if offs, _ := st.Offsets(); !slices.Equal(offs, []int64{30, 40, 50}) {
		t.Fatalf("Offsets after loads = %v", offs)
	}
	// Saving at an existing offset replaces it.
	if err := st.Save(stateAt(3), 50); err != nil {
		t.Fatal(err)
	}
	if s, _, _, _ := st.Load(50); s.Len() != 3 || !reflect.DeepEqual(s.Producers(), stateAt(3).Producers()) {
		t.Fatalf("snapshot at 50 not replaced")
	}
	if err := st.Save(New(), -1); !errors.Is(err, ErrSnapshotState) {
		t.Fatalf("Save at -1 = %v, want ErrSnapshotState", err)
	}
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), fsutil.TmpExt) {
			t.Fatalf("temporary file %s left in %s", de.Name(), dir)
		}
	}
}

func TestStoreLoadSkipsAndDeletesCorrupt(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cfg := DefaultStoreConfig()
	cfg.Keep = 10
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	st, err := OpenStore(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{10, 20, 30, 40} {
		if err := st.Save(stateAt(int(off)), off); err != nil {
			t.Fatal(err)
		}
	}
	// 40: truncated. 30: a bit flipped. 20: content names another offset.
	data, _ := os.ReadFile(st.Path(40))
	if err := os.WriteFile(st.Path(40), data[:len(data)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(st.Path(30))
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(st.Path(30), data, 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(st.Path(10))
	if err := os.WriteFile(st.Path(20), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, off, found, err := st.Load(math.MaxInt64)
	if err != nil || !found || off != 10 || !reflect.DeepEqual(s.Producers(), stateAt(10).Producers()) {
		t.Fatalf("Load = %d, %v, %v; want the snapshot at 10", off, found, err)
	}
	if offs, _ := st.Offsets(); !slices.Equal(offs, []int64{10}) {
		t.Fatalf("Offsets after Load = %v, want corrupt ones deleted", offs)
	}
	if got := strings.Count(logs.String(), "deleting corrupt producer snapshot"); got != 3 {
		t.Fatalf("logged %d corrupt snapshots, want 3:\n%s", got, logs.String())
	}
	// All corrupt: found is false, not an error.
	if err := os.WriteFile(st.Path(10), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := st.Load(math.MaxInt64); found || err != nil {
		t.Fatalf("Load with only a corrupt snapshot = %v, %v; want not found, nil", found, err)
	}
}

func TestStoreLoadIOErrorIsNotCorruption(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, 3)
	// A directory where a snapshot file should be: reading it fails with an
	// I/O error, which must be returned, not treated as corruption.
	if err := os.Mkdir(st.Path(5), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Path(5), "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.read(5); err == nil || errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("read of a directory = %v; want an I/O error, not corruption", err)
	}
	// Offsets ignores non-regular entries, so Load finds nothing and
	// deletes nothing.
	if _, _, found, err := st.Load(10); found || err != nil {
		t.Fatalf("Load = %v, %v", found, err)
	}
	if _, err := os.Stat(st.Path(5)); err != nil {
		t.Fatalf("Load removed a directory it does not own: %v", err)
	}
}

func TestStoreDeletes(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, 10)
	for _, off := range []int64{0, 10, 20, 30, 40} {
		if err := st.Save(stateAt(int(off)), off); err != nil {
			t.Fatal(err)
		}
	}
	// A file the store does not own must survive every deletion.
	other := filepath.Join(dir, "00000000000000000000.log")
	if err := os.WriteFile(other, []byte("segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do   func() error
		want []int64
	}{
		{func() error { return st.DeleteAbove(math.MaxInt64) }, []int64{0, 10, 20, 30, 40}},
		{func() error { return st.DeleteAbove(30) }, []int64{0, 10, 20, 30}},
		{func() error { return st.DeleteAbove(25) }, []int64{0, 10, 20}},
		{func() error { return st.DeleteBelow(10) }, []int64{10, 20}},
		{func() error { return st.DeleteBelow(11) }, []int64{20}},
		{func() error { return st.DeleteAll() }, nil},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if offs, _ := st.Offsets(); !slices.Equal(offs, s.want) {
			t.Fatalf("step %d: Offsets = %v, want %v", i, offs, s.want)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("segment file removed: %v", err)
	}
}

func TestOpenStoreRemovesTempFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, SnapshotFileName(7)+fsutil.TmpExt)
	keep := filepath.Join(dir, "unrelated.tmp")
	for _, p := range []string{tmp, keep} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t, dir, 1)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover %s not removed: %v", tmp, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("unrelated file removed: %v", err)
	}
	if offs, _ := st.Offsets(); len(offs) != 0 {
		t.Fatalf("Offsets = %v", offs)
	}
	if st.Dir() != dir {
		t.Fatalf("Dir = %q", st.Dir())
	}
}

// randomLog returns n idempotent batches from a few producers, in log order,
// with occasional epoch bumps, as a leader would have appended them.
func randomLog(rng *rand.Rand, n int) []BatchMeta {
	type prod struct {
		epoch int16
		seq   int32
	}
	prods := make([]prod, 6)
	var out []BatchMeta
	leo := int64(0)
	for range n {
		pid := rng.IntN(len(prods))
		p := &prods[pid]
		if rng.IntN(20) == 0 {
			p.epoch++
			p.seq = 0
		}
		count := int32(1 + rng.IntN(5))
		b := NewBatchMeta(int64(pid), p.epoch, p.seq, leo, count-1, 1_700_000_000_000+leo, false)
		out = append(out, b)
		p.seq = IncrementSequence(p.seq, count)
		leo = b.LastOffset + 1
		if rng.IntN(3) == 0 {
			leo += int64(rng.IntN(4)) // a non-idempotent batch in between
		}
	}
	return out
}

func build(batches []BatchMeta, below int64) *State {
	s := New()
	for _, b := range batches {
		if b.LastOffset < below {
			s.Update(b)
		}
	}
	return s
}

// TestRebuildFromSnapshotAndReplay follows the startup and exact-truncation
// recipes of doc.go and checks they give the state built directly.
func TestRebuildFromSnapshotAndReplay(t *testing.T) {
	seed := uint64(7)
	rng := rand.New(rand.NewPCG(seed, seed))
	for iter := range 50 {
		batches := randomLog(rng, 200)
		leo := batches[len(batches)-1].LastOffset + 1
		st := openStore(t, t.TempDir(), 4)
		// Snapshots at four batch boundaries (segment rolls).
		for range 4 {
			b := batches[rng.IntN(len(batches))]
			if err := st.Save(build(batches, b.FirstOffset), b.FirstOffset); err != nil {
				t.Fatal(err)
			}
		}
		// Truncate at a random batch boundary X (X = leo: plain restart).
		x := leo
		if iter%2 == 1 {
			x = batches[rng.IntN(len(batches))].FirstOffset
		}
		if err := st.DeleteAbove(x); err != nil {
			t.Fatal(err)
		}
		s, snapOff, found, err := st.Load(x)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			s, snapOff = New(), 0
		}
		// Replay from somewhat before the snapshot offset, as a scan starting
		// at a segment's first batch would.
		from := max(0, snapOff-10)
		for _, b := range batches {
			if b.LastOffset >= from && b.LastOffset < x {
				s.Update(b)
			}
		}
		want := build(batches, x)
		if !reflect.DeepEqual(s.Producers(), want.Producers()) {
			t.Fatalf("seed %d iteration %d: rebuilt state at %d (snapshot %d, found %v) differs:\n got %+v\nwant %+v",
				seed, iter, x, snapOff, found, s.Producers(), want.Producers())
		}
		if offs, _ := st.Offsets(); len(offs) > 0 && offs[len(offs)-1] > x {
			t.Fatalf("snapshot above %d survived DeleteAbove: %v", x, offs)
		}
	}
}
