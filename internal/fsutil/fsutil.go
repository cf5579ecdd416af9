// Package fsutil holds the durable-file helpers shared by the raft WAL and the
// producer-state store (an atomic write-fsync-rename and a directory fsync), and
// the exclusive lock a broker holds on its data directory.
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TmpExt is appended to a file's name while WriteFileAtomic writes it. A file
// with this suffix is never complete; directory owners remove leftovers on open.
const TmpExt = ".tmp"

// WriteFileAtomic makes dir/name hold exactly b, durably, or leaves the old
// file in place: it writes dir/name+TmpExt, fsyncs it, renames it over
// dir/name, then fsyncs dir so the rename itself survives a crash. On error
// the temporary file is removed (best effort).
func WriteFileAtomic(dir, name string, b []byte) (err error) {
	final := filepath.Join(dir, name)
	tmp := final + TmpExt
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, serr)
	}
	return cerr
}

// ErrLocked reports a lock file held by another process (or another open of it).
var ErrLocked = errors.New("fsutil: locked by another process")

// Lock is an exclusive advisory lock (flock) on a file, held until Unlock or the process's end
// (kill -9 included); the file holds the holder's pid for people reading it.
type Lock struct{ f *os.File }

// LockFile takes the exclusive lock on path, creating the file if needed, without waiting: a held
// lock returns ErrLocked with the pid the holder wrote.
func LockFile(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (pid %s)", ErrLocked, path, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("fsutil: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock (the file stays).
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor releases the flock
	l.f = nil
	return err
}
