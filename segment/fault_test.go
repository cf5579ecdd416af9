package segment

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sluice-io/sluice/internal/batchtest"
)

// faultFS fails chosen operations on segment (.log) files: the next
// failWrites writes land half their bytes and then fail, the next
// failSyncs syncs fail.
type faultFS struct {
	FS
	failWrites atomic.Int32
	failSyncs  atomic.Int32
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return file, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.failWrites.Add(-1) >= 0 {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if f.fs.failSyncs.Add(-1) >= 0 {
		return syscall.EIO
	}
	return f.File.Sync()
}

func TestFailedWriteLeavesLogUnchanged(t *testing.T) {
	fsys := &faultFS{FS: OSFS()}
	cfg := testConfig()
	cfg.FS = fsys
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	first := batch("a", 3)
	mustAppend(t, l, first, 0)

	fsys.failWrites.Store(1)
	if _, err := l.Append(batch("b", 2), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append with failing write = %v", err)
	}
	if l.LogEndOffset() != 3 || l.Size() != int64(len(first)) {
		t.Fatalf("log changed: LEO %d size %d", l.LogEndOffset(), l.Size())
	}
	if st, _ := os.Stat(l.active.path); st.Size() != int64(len(first)) {
		t.Fatalf("partial write left in file: %d bytes", st.Size())
	}
	// The log stays usable and the next append lands where it should.
	second := batch("c", 2)
	if info := mustAppend(t, l, second, 0); info.FirstOffset != 3 {
		t.Fatalf("append after failure at %d", info.FirstOffset)
	}
	_, all := readAll(t, l, 0, 5, 1<<20)
	if !bytes.Equal(all, batchtest.Concat(first, second)) {
		t.Fatal("content after failed write wrong")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	if l2.LogEndOffset() != 5 {
		t.Fatalf("reopened LEO %d", l2.LogEndOffset())
	}
}

func TestFailedSyncFailsLog(t *testing.T) {
	fsys := &faultFS{FS: OSFS()}
	cfg := testConfig()
	cfg.FS = fsys
	cfg.Durability = DurabilityAlways
	l := openLog(t, t.TempDir(), cfg)
	mustAppend(t, l, batch("a", 1), 0)
	fsys.failSyncs.Store(1)
	if _, err := l.Append(batch("b", 1), 0); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with failing sync = %v", err)
	}
	// After a failed fdatasync the page cache state is unknown: refuse.
	if _, err := l.Append(batch("c", 1), 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after failed sync = %v", err)
	}
}
