package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batchtest"
)

func TestAppendStampsAndReads(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	var want [][]byte
	for i := 0; i < 40; i++ {
		b := batch("r", 1+i%5, batchtest.Timestamp(int64(1000+10*i)))
		info := mustAppend(t, l, b, 3)
		if got := int64(binary.BigEndian.Uint64(b)); got != info.FirstOffset {
			t.Fatalf("baseOffset stamped %d, info says %d", got, info.FirstOffset)
		}
		if got := int32(binary.BigEndian.Uint32(b[12:])); got != 3 {
			t.Fatalf("epoch stamped %d", got)
		}
		if info.LastOffset-info.FirstOffset != int64(i%5) {
			t.Fatalf("append %d: offsets %d..%d", i, info.FirstOffset, info.LastOffset)
		}
		if info.MaxTimestamp != int64(1000+10*i+i%5) {
			t.Fatalf("max timestamp %d", info.MaxTimestamp)
		}
		want = append(want, b)
	}
	leo := l.LogEndOffset()
	if leo != 120 { // sum of 1+i%5 over 40 batches
		t.Fatalf("LEO %d", leo)
	}
	_, all := readAll(t, l, 0, leo, 1<<30)
	if !bytes.Equal(all, batchtest.Concat(want...)) {
		t.Fatal("read bytes differ from appended bytes")
	}
	// Every offset starts a view at the batch containing it.
	for off := int64(0); off < leo; off++ {
		hs, _ := readAll(t, l, off, leo, 1)
		if len(hs) != 1 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
			t.Fatalf("Read(%d) first batch %+v", off, hs)
		}
	}
	// upper bounds the view at a batch boundary.
	hs, _ := readAll(t, l, 0, 10, 1<<30)
	if last := hs[len(hs)-1]; last.LastOffset() >= 10 {
		t.Fatalf("view passes upper: last batch ends at %d", last.LastOffset())
	}
	// maxBytes: whole batches only, at least one.
	hs, all = readAll(t, l, 0, leo, len(want[0])+len(want[1])+5)
	if len(hs) != 2 || len(all) != len(want[0])+len(want[1]) {
		t.Fatalf("maxBytes view holds %d batches", len(hs))
	}
	// Empty and out-of-range reads.
	if v, err := l.Read(leo, 100, leo); err != nil || len(v.Ranges) != 0 {
		t.Fatalf("Read(LEO) = %v, %v", v, err)
	}
	if v, err := l.Read(5, 100, 5); err != nil || len(v.Ranges) != 0 {
		t.Fatalf("Read(upper) = %v, %v", v, err)
	}
	if _, err := l.Read(leo+1, 100, leo+5); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read past LEO: %v", err)
	}
	if _, err := l.Read(-1, 100, leo); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(-1): %v", err)
	}
	// A batch that crosses upper yields an empty view.
	if hs, _ := readAll(t, l, 3, 4, 1<<20); len(hs) != 0 {
		t.Fatalf("batch crossing upper returned: %+v", hs)
	}
}

func TestRollReadAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	cfg.IndexIntervalBytes = 128
	l := openLog(t, dir, cfg)
	var want [][]byte
	for i := 0; i < 120; i++ {
		b := batch("seg", 1+i%3, batchtest.Timestamp(int64(5000+i)))
		mustAppend(t, l, b, 1)
		want = append(want, b)
	}
	if l.NumSegments() < 5 {
		t.Fatalf("only %d segments", l.NumSegments())
	}
	leo := l.LogEndOffset()
	_, all := readAll(t, l, 0, leo, 1<<30)
	if !bytes.Equal(all, batchtest.Concat(want...)) {
		t.Fatal("cross-segment read differs")
	}
	v, err := l.Read(0, 1<<30, leo)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Ranges) != l.NumSegments() {
		t.Fatalf("%d ranges for %d segments", len(v.Ranges), l.NumSegments())
	}
	v.Release()
	v.Release() // idempotent
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if filepath.Base(names[0]) != "00000000000000000000.log" {
		t.Fatalf("segment name %s", names[0])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Read(0, 10, leo); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := l.Append(batch("x", 1), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	logs := &logCapture{}
	cfg.Logger = logs.logger()
	l2 := openLog(t, dir, cfg)
	if logs.count("segment recovered") != 0 || logs.count("not trusted") != 0 {
		t.Fatalf("clean reopen re-validated segments:\n%s", logs.String())
	}
	if l2.LogEndOffset() != leo {
		t.Fatalf("reopened LEO %d, want %d", l2.LogEndOffset(), leo)
	}
	_, all2 := readAll(t, l2, 0, leo, 1<<30)
	if !bytes.Equal(all2, all) {
		t.Fatal("reopened log differs")
	}
	for off := int64(0); off < leo; off += 7 {
		hs, _ := readAll(t, l2, off, leo, 1)
		if hs[0].BaseOffset > off || hs[0].LastOffset() < off {
			t.Fatalf("reopened Read(%d) = %+v", off, hs[0])
		}
	}
	info := mustAppend(t, l2, batch("after", 2), 1)
	if info.FirstOffset != leo {
		t.Fatalf("append after reopen at %d, want %d", info.FirstOffset, leo)
	}
	// Timestamps: first record whose timestamp >= target (batch 49 holds
	// 5049 and 5050; batch 50 starts at 5050).
	off, ts, ok := l2.OffsetForTimestamp(5050)
	if !ok || ts != 5050 {
		t.Fatalf("OffsetForTimestamp(5050) = %d, %d, %v", off, ts, ok)
	}
	hs, _ := readAll(t, l2, off, l2.LogEndOffset(), 1)
	if len(hs) != 1 || hs[0].MaxTimestamp != 5050 {
		t.Fatalf("batch at %d: %+v", off, hs)
	}
	if _, _, ok := l2.OffsetForTimestamp(1 << 50); ok {
		t.Fatal("timestamp beyond all batches found")
	}
	if off, _, ok := l2.OffsetForTimestamp(0); !ok || off != 0 {
		t.Fatalf("OffsetForTimestamp(0) = %d, %v", off, ok)
	}
	if ts, off := l2.MaxTimestampAndOffset(); ts != batchtest.DefaultTimestamp+1 || off != leo {
		t.Fatalf("MaxTimestampAndOffset = %d, %d", ts, off)
	}
}

func TestAppendValidationLeavesLogUnchanged(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, batch("a", 2), 0)
	good := batch("b", 1)
	bad := batch("c", 1)
	bad[len(bad)-1] ^= 0xff
	control := batch("d", 1, batchtest.Attributes(batchtest.AttrControl))
	nonzero := batch("e", 1, batchtest.BaseOffset(9))
	big := batchtest.Build(batchtest.Filler(1, 2<<20))
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"corrupt second batch", batchtest.Concat(good, bad), ErrCorrupt},
		{"torn", good[:len(good)-2], ErrCorrupt},
		{"control", control, ErrInvalidRecord},
		{"non-zero base offset", nonzero, ErrInvalidRecord},
		{"too large", big, ErrTooLarge},
		{"magic 1", func() []byte { b := batch("f", 1); b[16] = 1; return b }(), ErrUnsupportedMagic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]byte(nil), tc.b...)
			if _, err := l.Append(tc.b, 0); !errors.Is(err, tc.want) {
				t.Fatalf("Append = %v, want %v", err, tc.want)
			}
			if !bytes.Equal(before, tc.b) {
				t.Fatal("rejected batch was modified")
			}
			if l.LogEndOffset() != 2 || l.Size() != int64(len(batch("a", 2))) {
				t.Fatalf("log changed: LEO %d size %d", l.LogEndOffset(), l.Size())
			}
		})
	}
	// Several batches in one call are all appended.
	info := mustAppend(t, l, batchtest.Concat(batch("x", 1), batch("y", 3)), 0)
	if info.FirstOffset != 2 || info.LastOffset != 5 || len(info.Headers) != 2 || info.Headers[1].BaseOffset != 3 {
		t.Fatalf("multi-batch append %+v", info)
	}
}

func TestAppendReplicaAndEpochs(t *testing.T) {
	leader := openLog(t, t.TempDir(), testConfig())
	follower := openLog(t, t.TempDir(), testConfig())
	for i, epoch := range []int32{1, 1, 2, 2, 2, 5} {
		mustAppend(t, leader, batch("l", 2+i), epoch)
	}
	if _, err := leader.Append(batch("stale", 1), 4); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale epoch append: %v", err)
	}
	_, all := readAll(t, leader, 0, leader.LogEndOffset(), 1<<30)
	// Replicate in two fetches.
	hs, _ := ValidateBatches(all, 0)
	split := hs[0].Size() + hs[1].Size() + hs[2].Size()
	if _, err := follower.AppendReplica(all[split:]); !errors.Is(err, ErrNonMonotonic) {
		t.Fatalf("gap append: %v", err)
	}
	if _, err := follower.AppendReplica(all[:split]); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.AppendReplica(all[split:]); err != nil {
		t.Fatal(err)
	}
	_, fall := readAll(t, follower, 0, follower.LogEndOffset(), 1<<30)
	if !bytes.Equal(fall, all) {
		t.Fatal("follower bytes differ")
	}
	want := []EpochEntry{{1, 0}, {2, 5}, {5, 20}}
	for _, l := range []*Log{leader, follower} {
		if got := l.EpochEntries(); !equalEpochs(got, want) {
			t.Fatalf("epochs %v, want %v", got, want)
		}
		if e, ok := l.LatestEpoch(); !ok || e != 5 {
			t.Fatalf("latest epoch %d %v", e, ok)
		}
	}
	leo := leader.LogEndOffset()
	for _, tc := range []struct {
		req      int32
		epoch    int32
		endOfset int64
	}{
		{5, 5, leo}, {2, 2, 20}, {1, 1, 5}, {3, 2, 20}, {4, 2, 20}, {0, 0, 0}, {6, -1, -1}, {-1, -1, -1},
	} {
		if e, off := leader.EndOffsetForEpoch(tc.req); e != tc.epoch || off != tc.endOfset {
			t.Fatalf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.req, e, off, tc.epoch, tc.endOfset)
		}
	}
	// Truncate the follower into epoch 2 and check the cache follows.
	if err := follower.TruncateTo(9); err != nil {
		t.Fatal(err)
	}
	if got := follower.LogEndOffset(); got != 9 {
		t.Fatalf("LEO after truncate %d", got)
	}
	if got := follower.EpochEntries(); !equalEpochs(got, want[:2]) {
		t.Fatalf("epochs after truncate %v", got)
	}
	// The epoch cache survives a reopen.
	dir := follower.Dir()
	if err := follower.Close(); err != nil {
		t.Fatal(err)
	}
	f2 := openLog(t, dir, testConfig())
	if got := f2.EpochEntries(); !equalEpochs(got, want[:2]) {
		t.Fatalf("epochs after reopen %v", got)
	}
	// AssignEpoch before writes, as a new leader does.
	if err := f2.AssignEpoch(7, f2.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if e, off := f2.EndOffsetForEpoch(2); e != 2 || off != 9 {
		t.Fatalf("EndOffsetForEpoch(2) after assign = %d, %d", e, off)
	}
}

func equalEpochs(a, b []EpochEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTruncateTo(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l := openLog(t, dir, cfg)
	var want [][]byte
	for i := 0; i < 60; i++ {
		b := batch("t", 2)
		mustAppend(t, l, b, int32(i/20))
		want = append(want, b)
	}
	segsBefore := l.NumSegments()
	// Mid-batch: offset 61 is inside batch [60,61]; the whole batch goes.
	if err := l.TruncateTo(61); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 60 {
		t.Fatalf("LEO %d, want 60", l.LogEndOffset())
	}
	if l.NumSegments() >= segsBefore {
		t.Fatalf("segments %d, before %d", l.NumSegments(), segsBefore)
	}
	_, all := readAll(t, l, 0, 1<<40, 1<<30)
	if !bytes.Equal(all, batchtest.Concat(want[:30]...)) {
		t.Fatal("truncated log content wrong")
	}
	if got := l.EpochEntries(); !equalEpochs(got, []EpochEntry{{0, 0}, {1, 40}}) {
		t.Fatalf("epochs %v", got)
	}
	// No *.deleted or stray files once nothing pins them.
	if m, _ := filepath.Glob(filepath.Join(dir, "*.deleted")); len(m) != 0 {
		t.Fatalf("leftover files %v", m)
	}
	info := mustAppend(t, l, batch("n", 1), 3)
	if info.FirstOffset != 60 {
		t.Fatalf("append after truncate at %d", info.FirstOffset)
	}
	if err := l.TruncateTo(1000); err != nil || l.LogEndOffset() != 61 {
		t.Fatalf("truncate above LEO: %v, LEO %d", err, l.LogEndOffset())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogEndOffset() != 61 {
		t.Fatalf("reopened LEO %d", l2.LogEndOffset())
	}
	if err := l2.TruncateFullyAndStartAt(500); err != nil {
		t.Fatal(err)
	}
	if l2.LogStartOffset() != 500 || l2.LogEndOffset() != 500 || len(l2.EpochEntries()) != 0 {
		t.Fatalf("after full truncate: start %d end %d epochs %v", l2.LogStartOffset(), l2.LogEndOffset(), l2.EpochEntries())
	}
	if _, err := l2.Read(0, 10, 600); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	b := batch("z", 1, batchtest.BaseOffset(500), batchtest.LeaderEpoch(9))
	if _, err := l2.AppendReplica(b); err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	l3 := openLog(t, dir, cfg)
	if l3.LogStartOffset() != 500 || l3.LogEndOffset() != 501 {
		t.Fatalf("reopen after full truncate: start %d end %d", l3.LogStartOffset(), l3.LogEndOffset())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.log")); len(m) != 1 {
		t.Fatalf("segment files %v", m)
	}
}

func TestRetention(t *testing.T) {
	clock := &fakeClock{t: batchtestTime(0)}
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.RetentionBytes = 4096
	cfg.RetentionAge = -1
	cfg.Now = clock.now
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	for i := 0; i < 100; i++ {
		mustAppend(t, l, batch("ret", 3, batchtest.Timestamp(int64(i)*1000)), 0)
	}
	segs := l.NumSegments()
	// Hold a view on the oldest segment across retention.
	v, err := l.Read(0, 100, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.EnforceRetention()
	if err != nil || n == 0 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if l.NumSegments() != segs-n || l.Size() > 4096+1024 {
		t.Fatalf("after retention: %d segments, %d bytes", l.NumSegments(), l.Size())
	}
	start := l.LogStartOffset()
	if start == 0 {
		t.Fatal("log start did not advance")
	}
	if _, err := l.Read(0, 100, l.LogEndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below new start: %v", err)
	}
	// The pinned view still reads its bytes.
	if hs, _ := viewBatches(t, v); len(hs) == 0 || hs[0].BaseOffset != 0 {
		t.Fatalf("pinned view lost its batches: %+v", hs)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.deleted")); len(m) == 0 {
		t.Fatal("retired files removed while pinned")
	}
	v.Release()
	// The view was the last long-lived pin, but the background flusher may
	// briefly pin a retired segment (syncing it or its index files); the
	// files go when that pin drops, so poll with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "*.deleted"))
		if len(m) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retired files left 10s after release: %v", m)
		}
		time.Sleep(time.Millisecond)
	}
	// Retention by age: the newest batch timestamp decides.
	l.cfg.RetentionBytes = -1
	l.cfg.RetentionAge = 50 * time.Second
	clock.t = batchtestTime(120_000)
	n, err = l.EnforceRetention()
	if err != nil || n == 0 {
		t.Fatalf("age retention = %d, %v", n, err)
	}
	hs, _ := readAll(t, l, l.LogStartOffset(), l.LogEndOffset(), 1<<20)
	if hs[0].MaxTimestamp < 120_000-50_000-1000*3 {
		t.Fatalf("kept a batch at %d", hs[0].MaxTimestamp)
	}
	// Retention never deletes the active segment or beyond the limit.
	if n, _ := l.EnforceRetentionBelow(l.LogStartOffset()); n != 0 {
		t.Fatalf("deleted %d segments above the limit", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogStartOffset() != l.LogStartOffset() {
		t.Fatalf("log start %d after reopen, want %d", l2.LogStartOffset(), l.LogStartOffset())
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p0")
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, batch("d", 1), 0)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.SegmentBytes = 1 << 40
	bad.IndexIntervalBytes = 0
	bad.Durability = DurabilityInterval
	bad.FlushInterval = 0
	if err := bad.Validate(); err == nil {
		t.Fatal("bad config accepted")
	}
	for _, s := range []string{"never", "interval", "always"} {
		d, err := ParseDurability(s)
		if err != nil || d.String() != s {
			t.Fatalf("ParseDurability(%q) = %v, %v", s, d, err)
		}
	}
	if _, err := ParseDurability("sometimes"); err == nil {
		t.Fatal("bad durability accepted")
	}
}

func TestRollByAge(t *testing.T) {
	clock := &fakeClock{t: batchtestTime(1_000_000)}
	cfg := testConfig()
	cfg.SegmentMaxAge = time.Hour
	cfg.Now = clock.now
	l := openLog(t, t.TempDir(), cfg)
	mustAppend(t, l, batch("a", 1), 0)
	mustAppend(t, l, batch("b", 1), 0)
	if l.NumSegments() != 1 {
		t.Fatalf("%d segments before the age limit", l.NumSegments())
	}
	clock.t = clock.t.Add(time.Hour)
	info := mustAppend(t, l, batch("c", 1), 0)
	if l.NumSegments() != 2 || l.segs.Load().segs[1].base != info.FirstOffset {
		t.Fatalf("no roll by age: %d segments", l.NumSegments())
	}
}

func TestDurabilityInterval(t *testing.T) {
	fsys := &countingFS{FS: OSFS()}
	cfg := testConfig()
	cfg.Durability = DurabilityInterval
	cfg.FlushInterval = 5 * time.Millisecond
	cfg.FS = fsys
	l := openLog(t, t.TempDir(), cfg)
	before := fsys.syncs.Load()
	mustAppend(t, l, batch("a", 3), 0)
	// The flusher syncs within a few intervals and moves the recovery point.
	deadline := time.Now().Add(10 * time.Second)
	for l.RecoveryPoint() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("recovery point %d after 10s", l.RecoveryPoint())
		}
		runtime.Gosched()
	}
	if fsys.syncs.Load() == before {
		t.Fatal("recovery point moved without a sync")
	}
}

func TestScanHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 512
	l := openLog(t, t.TempDir(), cfg)
	var want []Header
	for i := 0; i < 30; i++ {
		info := mustAppend(t, l, batch("s", 1+i%4, batchtest.Producer(42, 1, int32(i))), 2)
		want = append(want, info.Headers...)
	}
	var got []Header
	if err := l.ScanHeaders(want[5].BaseOffset+1, func(h Header) error { got = append(got, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)-5 {
		t.Fatalf("scanned %d headers, want %d", len(got), len(want)-5)
	}
	for i, h := range got {
		if h != want[i+5] {
			t.Fatalf("header %d = %+v, want %+v", i, h, want[i+5])
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := l.ScanHeaders(0, func(Header) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("ScanHeaders stop = %v after %d", err, n)
	}
	if err := l.ScanHeaders(l.LogEndOffset()+1, func(Header) error { return nil }); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ScanHeaders past end = %v", err)
	}
}

// TruncateTo waits for views pinned on the segment it cuts; the pinned
// bytes stay readable until the view is released.
func TestTruncateWaitsForPinnedView(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	var want [][]byte
	for i := 0; i < 10; i++ {
		b := batch("p", 2)
		mustAppend(t, l, b, 0)
		want = append(want, b)
	}
	v, err := l.Read(0, 1<<20, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	path := l.active.path
	done := make(chan error, 1)
	go func() { done <- l.TruncateTo(4) }()
	deadline := time.Now().Add(10 * time.Second)
	for l.LogEndOffset() != 4 { // published before the wait for pins
		if time.Now().After(deadline) {
			t.Fatal("truncation did not start")
		}
		runtime.Gosched()
	}
	select {
	case err := <-done:
		t.Fatalf("TruncateTo returned (%v) while a view pins the segment", err)
	default:
	}
	if st, _ := os.Stat(path); st.Size() != int64(len(batchtest.Concat(want...))) {
		t.Fatalf("file truncated under a pinned view: %d bytes", st.Size())
	}
	if _, all := viewBatches(t, v); !bytes.Equal(all, batchtest.Concat(want...)) {
		t.Fatal("pinned view bytes changed")
	}
	// New readers already see the truncated log.
	if hs, _ := readAll(t, l, 0, 100, 1<<20); len(hs) != 2 {
		t.Fatalf("new reader sees %d batches, want 2", len(hs))
	}
	v.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != int64(len(want[0])+len(want[1])) {
		t.Fatalf("file size %d after truncation", st.Size())
	}
}

// A batch validated once by Check is appended without a second validation,
// stamped like Append stamps; the log's size bound and the leader rules
// still apply, and a zero Checked is refused.
func TestAppendCheckedPending(t *testing.T) {
	cfg := testConfig()
	l := openLog(t, t.TempDir(), cfg)
	c, err := Check(batch("a", 3), cfg.MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	info, pending, err := l.AppendCheckedPending(c, 2)
	if err != nil || pending.Wait() != nil {
		t.Fatalf("AppendCheckedPending: %v", err)
	}
	if info.FirstOffset != 0 || info.LastOffset != 2 || l.LogEndOffset() != 3 {
		t.Fatalf("info %+v, LEO %d", info, l.LogEndOffset())
	}
	v, err := l.Read(0, 1<<20, l.LogEndOffset())
	if err != nil || len(v.Ranges) != 1 {
		t.Fatalf("Read: %v %+v", err, v)
	}
	got := make([]byte, v.Ranges[0].Len)
	if _, err := v.Ranges[0].File.ReadAt(got, v.Ranges[0].Pos); err != nil {
		t.Fatal(err)
	}
	v.Release()
	h, err := ValidateBatch(got, 0)
	if err != nil || h.PartitionLeaderEpoch != 2 || h.BaseOffset != 0 {
		t.Fatalf("stored batch: %+v, %v", h, err)
	}
	if _, _, err := l.AppendCheckedPending(Checked{}, 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("zero Checked: %v, want ErrCorrupt", err)
	}
	big, err := Check(batch("big", 200), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	small := cfg
	small.MaxBatchBytes = HeaderSize + 10
	l2 := openLog(t, t.TempDir(), small)
	if _, _, err := l2.AppendCheckedPending(big, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized checked batch: %v, want ErrTooLarge", err)
	}
	if _, _, err := l.AppendCheckedPending(c, 1); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("older epoch: %v, want ErrStaleEpoch", err)
	}
}
