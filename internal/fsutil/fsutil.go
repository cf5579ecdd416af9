// Package fsutil holds the durable-file helpers shared by the raft WAL and the
// producer-state store: an atomic write-fsync-rename and a directory fsync.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
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
