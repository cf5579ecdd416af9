package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// rawDiskWrite writes size bytes to path in chunk-byte write(2) calls and
// then fdatasyncs it. It returns the time until the last write returned
// (the page-cache rate, which is what a broker with durability "never"
// pays) and the time including fdatasync.
func rawDiskWrite(ctx context.Context, path string, size int64, chunk int, prog *progress) (written, synced time.Duration, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: raw disk write: %w", err)
	}
	defer f.Close()
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	for done := int64(0); done < size; {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n, err := f.Write(buf[:min(int64(chunk), size-done)])
		done += int64(n)
		prog.add(int64(n))
		if err != nil {
			return 0, 0, fmt.Errorf("bench: raw disk write: %w", err)
		}
	}
	written = time.Since(start)
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return 0, 0, fmt.Errorf("bench: fdatasync: %w", err)
	}
	return written, time.Since(start), nil
}
