package segment

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batchtest"
)

// A broker that became leader in epoch 3, assigned the epoch at its log
// end and wrote nothing, then follows the epoch-2 leader: the divergence
// point is its log end, and the stale epoch-3 entry must go, or the new
// leader's epoch-2 batches are refused.
func TestTruncateToAtLogEndDropsStaleEpoch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset int64
	}{
		{"at log end", 10},
		{"above log end", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, testConfig())
			if _, err := l.AppendReplica(batch("e1", 10, batchtest.BaseOffset(0), batchtest.LeaderEpoch(1))); err != nil {
				t.Fatal(err)
			}
			if err := l.AssignEpoch(3, 10); err != nil {
				t.Fatal(err)
			}
			if err := l.TruncateTo(tc.offset); err != nil {
				t.Fatalf("TruncateTo(%d): %v", tc.offset, err)
			}
			if l.LogEndOffset() != 10 {
				t.Fatalf("LEO %d, want 10", l.LogEndOffset())
			}
			if _, err := l.AppendReplica(batch("e2", 3, batchtest.BaseOffset(10), batchtest.LeaderEpoch(2))); err != nil {
				t.Fatalf("AppendReplica of the epoch-2 leader's batch after TruncateTo(%d): %v (epochs %v)", tc.offset, err, l.EpochEntries())
			}
			want := []EpochEntry{{1, 0}, {2, 10}}
			if got := l.EpochEntries(); !equalEpochs(got, want) {
				t.Fatalf("epochs %v, want %v", got, want)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := openLog(t, dir, testConfig()).EpochEntries(); !equalEpochs(got, want) {
				t.Fatalf("epochs after reopen %v, want %v", got, want)
			}
		})
	}
}

// AppendReplicaPending returns before any fdatasync, so a follower can
// append to several partitions and then have all their syncs in flight at
// once: each gated sync below is entered before any is let through.
func TestAppendReplicaPendingSyncsConcurrently(t *testing.T) {
	g := &gateFS{FS: OSFS(), started: make(chan struct{}, 64), gate: make(chan struct{})}
	defer close(g.gate) // also lets Close sync freely
	cfg := testConfig()
	cfg.Durability = DurabilityAlways
	cfg.FS = g
	const partitions = 3
	var pendings []Pending
	var logs []*Log
	for i := 0; i < partitions; i++ {
		l := openLog(t, t.TempDir(), cfg)
		b := batchtest.Concat(
			batch("f", 2, batchtest.BaseOffset(0), batchtest.LeaderEpoch(4)),
			batch("g", 3, batchtest.BaseOffset(2), batchtest.LeaderEpoch(4)))
		info, p, err := l.AppendReplicaPending(b)
		if err != nil {
			t.Fatalf("AppendReplicaPending: %v", err)
		}
		if info.FirstOffset != 0 || info.LastOffset != 4 || l.LogEndOffset() != 5 {
			t.Fatalf("info %+v, LEO %d", info, l.LogEndOffset())
		}
		if hs, _ := readAll(t, l, 0, l.LogEndOffset(), 1<<20); len(hs) != 2 {
			t.Fatalf("written batches not readable before Wait: %d", len(hs))
		}
		pendings = append(pendings, p)
		logs = append(logs, l)
	}
	if n := g.syncs.Load(); n != 0 {
		t.Fatalf("%d fdatasyncs before any Wait, want 0", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, partitions)
	for _, p := range pendings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Wait()
		}()
	}
	timeout := time.After(10 * time.Second)
	for i := 0; i < partitions; i++ {
		select {
		case <-g.started:
		case <-timeout:
			t.Fatalf("only %d of %d syncs in flight together", i, partitions)
		}
	}
	for i := 0; i < partitions; i++ {
		g.gate <- struct{}{}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	for _, l := range logs {
		if rp := l.RecoveryPoint(); rp != 5 {
			t.Fatalf("recovery point %d after Wait, want 5", rp)
		}
	}
	// A refused append returns no Pending and writes nothing.
	if _, p, err := logs[0].AppendReplicaPending(batch("gap", 1, batchtest.BaseOffset(9))); !errors.Is(err, ErrNonMonotonic) || p != (Pending{}) {
		t.Fatalf("gap append = %+v, %v; want ErrNonMonotonic", p, err)
	}
}

// fillSegments appends batches of four records (timestamps 1000*i + record
// index, epoch 0 then 1) until the log has at least segs segments.
func fillSegments(t *testing.T, l *Log, segs int) {
	t.Helper()
	for i := 0; l.NumSegments() < segs || i < 8; i++ {
		mustAppend(t, l, batch("ls", 4, batchtest.Timestamp(int64(1000*i))), int32(min(i/8, 1)))
	}
}

func TestAdvanceLogStart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l := openLog(t, dir, cfg)
	fillSegments(t, l, 5)
	list := l.segs.Load().segs
	before := len(list)
	// Inside the third batch of the third segment; batches hold 4 records.
	start := list[2].base + 2*4 + 1
	if err := l.CheckpointHighWatermark(start - 5); err != nil {
		t.Fatal(err)
	}
	pinned, err := l.Read(0, 1<<20, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.AdvanceLogStart(start)
	if err != nil || n != 2 {
		t.Fatalf("AdvanceLogStart(%d) = %d, %v; want 2 segments", start, n, err)
	}
	if l.LogStartOffset() != start || l.NumSegments() != before-2 {
		t.Fatalf("log start %d, %d segments; want %d, %d", l.LogStartOffset(), l.NumSegments(), start, before-2)
	}
	if hs, _ := viewBatches(t, pinned); len(hs) == 0 || hs[0].BaseOffset != 0 {
		t.Fatalf("view pinned before the advance lost its batches: %+v", hs)
	}
	pinned.Release()
	if hw := l.HighWatermarkCheckpoint(); hw != start {
		t.Fatalf("HighWatermarkCheckpoint %d below the log start %d", hw, start)
	}
	if got := l.EpochEntries(); len(got) == 0 || got[0].StartOffset != start {
		t.Fatalf("epochs %v do not start at %d", got, start)
	}
	if _, _, ok := l.OffsetForTimestamp(0); !ok {
		t.Fatal("OffsetForTimestamp(0) found nothing")
	}
	check := func(l *Log) {
		t.Helper()
		for _, off := range []int64{0, list[2].base, start - 1} {
			if _, err := l.Read(off, 1<<20, l.LogEndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read(%d) below log start %d = %v, want ErrOffsetOutOfRange", off, start, err)
			}
		}
		for _, off := range []int64{start, start + 3, l.LogEndOffset() - 1} {
			hs, _ := readAll(t, l, off, l.LogEndOffset(), 1)
			if len(hs) != 1 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
				t.Fatalf("Read(%d) = %+v", off, hs)
			}
		}
		var first Header
		if err := l.ScanHeaders(0, func(h Header) error { first = h; return errors.New("stop") }); err == nil || first.BaseOffset != start-1 {
			t.Fatalf("ScanHeaders(0) first batch %+v, want the one at %d holding the start", first, start-1)
		}
		// Record start-1 (timestamp 1000*k) qualifies but is below the start:
		// the answer is the first record at or above it.
		k := (start - 1) / 4
		if off, ts, ok := l.OffsetForTimestamp(1000 * k); !ok || off != start || ts != 1000*k+1 {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d", 1000*k, off, ts, ok, start, 1000*k+1)
		}
	}
	check(l)
	if n, err := l.AdvanceLogStart(start - 1); n != 0 || err != nil || l.LogStartOffset() != start {
		t.Fatalf("AdvanceLogStart below start = %d, %v; start %d", n, err, l.LogStartOffset())
	}
	leo := l.LogEndOffset()
	if _, err := l.AdvanceLogStart(leo + 1); !errors.Is(err, ErrOffsetOutOfRange) || l.LogStartOffset() != start {
		t.Fatalf("AdvanceLogStart past LEO = %v; start %d", err, l.LogStartOffset())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogStartOffset() != start || l2.LogEndOffset() != leo {
		t.Fatalf("reopened: start %d end %d; want %d %d", l2.LogStartOffset(), l2.LogEndOffset(), start, leo)
	}
	check(l2)
	if got := l2.EpochEntries(); len(got) == 0 || got[0].StartOffset != start {
		t.Fatalf("epochs after reopen %v", got)
	}
	// Up to the log end: only the active segment stays, empty for readers.
	segs := l2.NumSegments()
	if n, err := l2.AdvanceLogStart(leo); err != nil || n != segs-1 || l2.NumSegments() != 1 {
		t.Fatalf("AdvanceLogStart(LEO) = %d, %v; %d segments left", n, err, l2.NumSegments())
	}
	if v, err := l2.Read(leo, 1<<20, leo); err != nil || len(v.Ranges) != 0 {
		t.Fatalf("Read(LEO) = %+v, %v", v, err)
	}
	if _, err := l2.AppendReplica(batch("next", 1, batchtest.BaseOffset(leo), batchtest.LeaderEpoch(1))); err != nil {
		t.Fatal(err)
	}
}

// A cut below a log start inside the removed batch brings the log start
// down to the new log end, durably.
func TestTruncateBelowMidBatchLogStart(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	for i := 0; i < 5; i++ {
		mustAppend(t, l, batch("m", 4), 0)
	}
	if _, err := l.AdvanceLogStart(9); err != nil { // inside [8, 11]
		t.Fatal(err)
	}
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 8 || l.LogStartOffset() != 8 {
		t.Fatalf("start %d end %d, want 8 8", l.LogStartOffset(), l.LogEndOffset())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l2 := openLog(t, dir, testConfig()); l2.LogStartOffset() != 8 || l2.LogEndOffset() != 8 {
		t.Fatalf("reopened: start %d end %d, want 8 8", l2.LogStartOffset(), l2.LogEndOffset())
	}
}

// A crash after AdvanceLogStart's checkpoint but before its deletions
// leaves segments wholly below the log start. Open honours the start and
// retention removes them without lowering it.
func TestRetentionDeletesSegmentsBelowLogStart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.RetentionBytes = -1
	cfg.RetentionAge = -1
	l := openLog(t, dir, cfg)
	fillSegments(t, l, 5)
	list := l.segs.Load().segs
	before := len(list)
	start := list[2].base + 5
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, logStartCheckpointFile), encodeOffsetCheckpoint(start), 0o644); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogStartOffset() != start || l2.NumSegments() != before {
		t.Fatalf("reopened: start %d, %d segments; want %d, %d", l2.LogStartOffset(), l2.NumSegments(), start, before)
	}
	if _, err := l2.Read(start-1, 1<<20, l2.LogEndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below checkpointed start = %v", err)
	}
	if n, err := l2.EnforceRetention(); err != nil || n != 2 {
		t.Fatalf("EnforceRetention = %d, %v; want 2", n, err)
	}
	if l2.LogStartOffset() != start {
		t.Fatalf("retention moved the log start to %d, want %d", l2.LogStartOffset(), start)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if l3 := openLog(t, dir, cfg); l3.LogStartOffset() != start || l3.NumSegments() != before-2 {
		t.Fatalf("after retention and reopen: start %d, %d segments", l3.LogStartOffset(), l3.NumSegments())
	}
}
