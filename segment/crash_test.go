package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/internal/batchtest"
)

// noSyncFS makes Sync free. Crash tests exercise recovery over real files
// hundreds of times; what a sync makes durable is not what they test.
type noSyncFS struct{ FS }

func (f noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{file}, nil
}

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// crashFixture is a log directory captured after the last append but
// before Close, as a process crash leaves it (no index for the active
// segment, recovery point below the last batch).
type crashFixture struct {
	cfg        Config
	files      map[string][]byte
	active     string // name of the active segment file
	lastPos    int    // position of the last batch in the active file
	last       []byte // the last batch as stored
	prefix     []byte // every byte before the last batch
	lastBase   int64
	timestamps map[int64]int64 // batch max timestamp -> base offset
}

func newCrashFixture(t *testing.T) *crashFixture {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 100
	cfg.FS = noSyncFS{OSFS()}
	src := t.TempDir()
	l, err := Open(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fx := &crashFixture{cfg: cfg, timestamps: map[int64]int64{}}
	for i := 0; i < 40; i++ {
		b := batch("crash", 1+i%3, batchtest.Timestamp(int64(10_000+100*i)))
		info := mustAppend(t, l, b, 1)
		fx.timestamps[info.MaxTimestamp] = info.FirstOffset
		fx.prefix = append(fx.prefix, b...)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	fx.last = batch("z", 1, batchtest.Timestamp(99_000))
	info := mustAppend(t, l, fx.last, 2)
	fx.lastBase = info.FirstOffset
	fx.lastPos = int(l.active.wsize) - len(fx.last)
	fx.active = filepath.Base(l.active.path)
	fx.files = map[string][]byte{}
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			continue // a checkpoint being replaced by the background flusher
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fx.files[e.Name()] = b
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := fx.files[strings.TrimSuffix(fx.active, logSuffix)+indexSuffix]; ok {
		t.Fatal("fixture: active segment has an index file before Close")
	}
	return fx
}

// materialize writes the fixture into dir with the active file replaced.
func (fx *crashFixture) materialize(t *testing.T, dir string, active []byte) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range fx.files {
		if name == fx.active {
			b = active
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// check reopens dir and verifies that exactly want survived, that every
// offset and timestamp lookup is right, and that appends continue at the
// right offset.
// wantEpoch is the latest epoch expected, or -2 to skip the check.
func (fx *crashFixture) check(t *testing.T, dir string, want []byte, wantEpoch int32, what string) {
	l, err := Open(dir, fx.cfg)
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	defer l.Close()
	hs, err := ValidateBatches(want, 0)
	if err != nil {
		t.Fatalf("%s: fixture: %v", what, err)
	}
	wantLEO := hs[len(hs)-1].NextOffset()
	if l.LogEndOffset() != wantLEO {
		t.Fatalf("%s: LEO %d, want %d", what, l.LogEndOffset(), wantLEO)
	}
	_, got := readAll(t, l, 0, wantLEO, 1<<30)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: log holds %d bytes, want %d", what, len(got), len(want))
	}
	// Offset index: every offset finds its batch.
	for _, h := range hs {
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			rh, _ := readAll(t, l, off, wantLEO, 1)
			if len(rh) != 1 || rh[0].BaseOffset != h.BaseOffset {
				t.Fatalf("%s: Read(%d) = %+v, want batch %d", what, off, rh, h.BaseOffset)
			}
		}
	}
	// Time index: each batch's max timestamp leads back to it, at its last
	// record (record timestamps rise by one per record).
	for _, h := range hs {
		off, ts, ok := l.OffsetForTimestamp(h.MaxTimestamp)
		if !ok || off != h.LastOffset() || ts != h.MaxTimestamp {
			t.Fatalf("%s: OffsetForTimestamp(%d) = %d, %d, %v; want %d", what, h.MaxTimestamp, off, ts, ok, h.LastOffset())
		}
	}
	latest, _ := l.LatestEpoch()
	if wantEpoch != -2 && latest != wantEpoch {
		t.Fatalf("%s: latest epoch %d, want %d", what, latest, wantEpoch)
	}
	info, err := l.Append(batch("next", 2), max(latest, 0))
	if err != nil || info.FirstOffset != wantLEO {
		t.Fatalf("%s: append after recovery at %d (%v), want %d", what, info.FirstOffset, err, wantLEO)
	}
	_, got = readAll(t, l, 0, wantLEO+2, 1<<30)
	if !bytes.HasPrefix(got, want) || len(got) != len(want)+len(batch("next", 2)) {
		t.Fatalf("%s: log after append wrong", what)
	}
}

func TestCrashCutLastBatchAtEveryByte(t *testing.T) {
	fx := newCrashFixture(t)
	dir := t.TempDir()
	activeFull := fx.files[fx.active]
	for cut := 0; cut <= len(fx.last); cut++ {
		fx.materialize(t, dir, activeFull[:fx.lastPos+cut])
		want, epoch := fx.prefix, int32(1)
		if cut == len(fx.last) {
			want, epoch = slices.Concat(fx.prefix, fx.last), 2
		}
		fx.check(t, dir, want, epoch, "cut at "+strconv.Itoa(cut))
	}
}

func TestCrashFlipBitsInLastBatch(t *testing.T) {
	fx := newCrashFixture(t)
	dir := t.TempDir()
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	activeFull := fx.files[fx.active]
	kept, dropped := 0, 0
	for trial := 0; trial < 150; trial++ {
		active := slices.Clone(activeFull)
		last := active[fx.lastPos:]
		for n := 1 + rng.IntN(3); n > 0; n-- {
			bit := rng.IntN(len(last) * 8)
			last[bit/8] ^= 1 << (bit % 8)
		}
		// Flips may cancel out; judge by the bytes that differ.
		epochOnly := true
		for i := range last {
			if last[i] != fx.last[i] && (i < offLeaderEpoch || i >= offMagic) {
				epochOnly = false
			}
		}
		fx.materialize(t, dir, active)
		// partitionLeaderEpoch is outside the CRC: a flip there leaves a
		// valid batch. Anything else must be caught.
		want, epoch := fx.prefix, int32(1)
		if epochOnly {
			epoch = -2 // the epoch itself was hit
			want = slices.Concat(fx.prefix, last)
			kept++
		} else {
			dropped++
		}
		if epochOnly && bytes.Equal(last, fx.last) {
			continue // flips cancelled out
		}
		fx.check(t, dir, want, epoch, "seed "+strconv.FormatUint(seed, 10)+" trial "+strconv.Itoa(trial))
	}
	t.Logf("kept %d, dropped %d", kept, dropped)
}

// A sealed segment that lost its tail at a batch boundary (valid on its
// own) while later segments survived: the log keeps the contiguous prefix.
func TestCrashLostTailOfSealedSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.FS = noSyncFS{OSFS()}
	l := openLog(t, dir, cfg)
	for i := 0; i < 40; i++ {
		mustAppend(t, l, batch("gap", 2), 0)
	}
	second := l.segs.Load().segs[1]
	hs := []Header{}
	if err := l.ScanHeaders(second.base, func(h Header) error {
		if h.BaseOffset < second.next.Load() {
			hs = append(hs, h)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	path := second.path
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	last := hs[len(hs)-1]
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-int64(last.Size())); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogEndOffset() != last.BaseOffset || l2.NumSegments() != 2 {
		t.Fatalf("LEO %d with %d segments, want %d with 2", l2.LogEndOffset(), l2.NumSegments(), last.BaseOffset)
	}
	if info := mustAppend(t, l2, batch("after", 1), 0); info.FirstOffset != last.BaseOffset {
		t.Fatalf("append at %d", info.FirstOffset)
	}
}
