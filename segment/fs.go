package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FS is the file-system seam: every file the log touches is opened, renamed,
// listed or removed through it, so a fault-injection harness can wrap it
// and fail chosen operations on chosen paths.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	ReadDir(name string) ([]os.DirEntry, error)
	MkdirAll(path string, perm os.FileMode) error
}

// File is an open file as the log uses it: positional reads and writes, a
// data sync, truncation. OS returns the descriptor that read ranges hand to
// sendfile/pread; a wrapper returns the file it wraps.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes written data durable (fdatasync for OS files; on a
	// directory it makes its entries durable).
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
	OS() *os.File
}

// OSFS returns the real file system.
func OSFS() FS { return osFS{} }

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

type osFile struct{ *os.File }

func (f osFile) OS() *os.File { return f.File }

// Sync uses fdatasync: the log needs its data and the file size durable,
// not the modification time.
func (f osFile) Sync() error {
	rc, err := f.File.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// removeIfExists removes name; a name that is already gone is no error.
func removeIfExists(fsys FS, name string) error {
	if err := fsys.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// syncDir makes the directory's entries (created, renamed, removed files)
// durable.
func syncDir(fsys FS, dir string) error {
	if err := syncFile(fsys, dir); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic replaces name with data: write a temporary file, sync it,
// rename it over name, sync the directory.
func writeFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + tmpSuffix
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(data, 0)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, werr)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(fsys, filepath.Dir(name))
}

// readFile reads a whole small file, at most limit bytes.
func readFile(fsys FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, limit %d", name, st.Size(), limit)
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}
