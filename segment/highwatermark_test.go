package segment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// hwWritesFS counts how often the high-watermark checkpoint is written.
type hwWritesFS struct {
	FS
	writes atomic.Int64
}

func (f *hwWritesFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if strings.HasSuffix(name, hwCheckpointFile+tmpSuffix) {
		f.writes.Add(1)
	}
	return f.FS.OpenFile(name, flag, perm)
}

func readHWFile(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, hwCheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHighWatermarkCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fsys := &hwWritesFS{FS: OSFS()}
	cfg := testConfig()
	cfg.FS = fsys
	l := openLog(t, dir, cfg)
	if hw := l.HighWatermarkCheckpoint(); hw != 0 {
		t.Fatalf("HighWatermarkCheckpoint of a new log = %d, want 0", hw)
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, l, batch("h", 3), 0)
	}
	if err := l.CheckpointHighWatermark(5); err != nil {
		t.Fatal(err)
	}
	if got := readHWFile(t, dir); got != "0\n5\n" {
		t.Fatalf("checkpoint file %q, want %q", got, "0\n5\n")
	}
	if err := l.CheckpointHighWatermark(5); err != nil || fsys.writes.Load() != 1 {
		t.Fatalf("same value again: %v, %d writes; want 1", err, fsys.writes.Load())
	}
	if err := l.CheckpointHighWatermark(100); err != nil || l.HighWatermarkCheckpoint() != 9 {
		t.Fatalf("above LEO: %v, HighWatermarkCheckpoint %d; want clamped to 9", err, l.HighWatermarkCheckpoint())
	}
	if err := l.CheckpointHighWatermark(-1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("negative: %v, want ErrOffsetOutOfRange", err)
	}
	if err := l.CheckpointHighWatermark(6); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckpointHighWatermark(7); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if hw := openLog(t, dir, cfg).HighWatermarkCheckpoint(); hw != 6 {
		t.Fatalf("after reopen: %d, want 6", hw)
	}
}

func TestHighWatermarkCheckpointFollowsTruncation(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testConfig())
	for i := 0; i < 10; i++ {
		mustAppend(t, l, batch("t", 2), 0)
	}
	if err := l.CheckpointHighWatermark(16); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(17); err != nil { // above: unchanged
		t.Fatal(err)
	}
	if hw := l.HighWatermarkCheckpoint(); hw != 16 {
		t.Fatalf("after a cut above it: %d, want 16", hw)
	}
	if err := l.TruncateTo(11); err != nil { // batch [10, 11] goes
		t.Fatal(err)
	}
	if hw := l.HighWatermarkCheckpoint(); hw != 10 {
		t.Fatalf("after TruncateTo(11): %d, want 10", hw)
	}
	if got := readHWFile(t, dir); got != "0\n10\n" {
		t.Fatalf("checkpoint file %q after truncation", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, testConfig())
	if hw := l2.HighWatermarkCheckpoint(); hw != 10 {
		t.Fatalf("after reopen: %d, want 10", hw)
	}
	if err := l2.TruncateFullyAndStartAt(50); err != nil {
		t.Fatal(err)
	}
	if hw := l2.HighWatermarkCheckpoint(); hw != 50 {
		t.Fatalf("after TruncateFullyAndStartAt(50): %d", hw)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if hw := openLog(t, dir, testConfig()).HighWatermarkCheckpoint(); hw != 50 {
		t.Fatalf("after full truncation and reopen: %d, want 50", hw)
	}
}

// Under DurabilityNever a crash can lose a tail the checkpoint covered:
// recovery cuts the log and the checkpoint reads as at most the new end.
func TestHighWatermarkCheckpointAfterLostTail(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Durability = DurabilityNever
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for i := 0; i < 10; i++ {
		b := batch("lost", 3)
		mustAppend(t, l, b, 0)
		sizes = append(sizes, len(b))
	}
	if err := l.CheckpointHighWatermark(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	path := l.active.path
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The last three batches never reached the disk; half of the seventh did.
	var keep int64
	for _, n := range sizes[:6] {
		keep += int64(n)
	}
	if err := os.Truncate(path, keep+int64(sizes[6]/2)); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogEndOffset() != 18 {
		t.Fatalf("recovered LEO %d, want 18", l2.LogEndOffset())
	}
	if hw := l2.HighWatermarkCheckpoint(); hw != 18 {
		t.Fatalf("HighWatermarkCheckpoint %d after losing the tail, want the new end 18", hw)
	}
	// The file still says 30; the clamped value is written on request.
	if err := l2.CheckpointHighWatermark(18); err != nil || readHWFile(t, dir) != "0\n18\n" {
		t.Fatalf("rewrite clamped value: %v, file %q", err, readHWFile(t, dir))
	}
}
