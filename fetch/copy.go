package fetch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sluice-io/sluice/wire"
)

// CopierConfig sizes the buffers of a Copier.
type CopierConfig struct {
	// ChunkBytes is the size of the pooled buffer a file range is read into
	// (pread) before it is written on. Zero is invalid; see DefaultCopierConfig.
	ChunkBytes int
	// BufferBytes is the size of the pooled bufio.Writer that WriteBuffered
	// puts in front of the destination, so the small header pieces between
	// ranges do not each become a TLS record and a syscall. Zero is invalid.
	BufferBytes int
}

// DefaultCopierConfig returns the sizes measured best on loopback TLS (see
// docs/benchmarks.md, "Fetch writers").
func DefaultCopierConfig() CopierConfig {
	return CopierConfig{
		// 64 KiB: four full TLS records per read; larger chunks measured no
		// faster and cost more memory per concurrent fetch.
		ChunkBytes: 64 << 10,
		// 16 KiB: one full TLS record (the maximum plaintext per record).
		BufferBytes: 16 << 10,
	}
}

// Validate rejects sizes that cannot work.
func (c CopierConfig) Validate() error {
	var errs []error
	if c.ChunkBytes < 4<<10 || c.ChunkBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("ChunkBytes %d outside [4 KiB, 64 MiB]", c.ChunkBytes))
	}
	if c.BufferBytes < 512 || c.BufferBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("BufferBytes %d outside [512, 64 MiB]", c.BufferBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fetch: copier config: %w", err)
	}
	return nil
}

// Copier writes pieces through an ordinary io.Writer, reading file ranges
// with pread into pooled buffers. It is the path for TLS connections, where
// the kernel cannot send file pages because the bytes must be encrypted in
// user space first. A Copier is safe for concurrent use; create it with
// NewCopier (the zero value is not usable).
type Copier struct {
	cfg     CopierConfig
	chunks  sync.Pool // *[]byte of cfg.ChunkBytes
	writers sync.Pool // *bufio.Writer of cfg.BufferBytes
}

// NewCopier returns a Copier with the given buffer sizes.
func NewCopier(cfg CopierConfig) (*Copier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newCopier(cfg), nil
}

func newCopier(cfg CopierConfig) *Copier {
	c := &Copier{cfg: cfg}
	c.chunks.New = func() any {
		b := make([]byte, cfg.ChunkBytes)
		return &b
	}
	c.writers.New = func() any { return bufio.NewWriterSize(nil, cfg.BufferBytes) }
	return c
}

// defaultCopier backs WriteCopy. Like senderPool it holds only scratch
// buffers, never state a caller could observe.
// DefaultCopierConfig is valid (TestDefaultCopierConfigValid).
var defaultCopier = newCopier(DefaultCopierConfig())

// WriteCopy writes pieces to w with the default Copier: byte pieces as they
// are, file ranges read with pread (File.ReadAt, which leaves the file offset
// alone) into a pooled buffer. w should be buffered (see
// Copier.WriteBuffered) when it is a tls.Conn. A file shorter than its range
// yields an error wrapping ErrShortFile; after any error the frame is
// incomplete and the caller must close the connection.
func WriteCopy(w io.Writer, pieces []wire.Piece) (int64, error) {
	return defaultCopier.Write(w, pieces)
}

// Write writes pieces to w unbuffered (w gets each byte piece and each chunk
// of a file range as one Write call). It returns the bytes w accepted.
func (c *Copier) Write(w io.Writer, pieces []wire.Piece) (int64, error) {
	var (
		total int64
		chunk *[]byte
	)
	for i := range pieces {
		p := &pieces[i]
		if p.File == nil {
			if len(p.Bytes) == 0 {
				continue
			}
			n, err := w.Write(p.Bytes)
			total += int64(n)
			if err != nil {
				c.putChunk(chunk)
				return total, fmt.Errorf("fetch: copy: write: %w", err)
			}
			continue
		}
		if chunk == nil {
			chunk = c.chunks.Get().(*[]byte)
		}
		n, err := copyRange(w, p, *chunk)
		total += n
		if err != nil {
			c.putChunk(chunk)
			return total, err
		}
	}
	c.putChunk(chunk)
	return total, nil
}

// WriteBuffered writes pieces to w through a pooled bufio.Writer and flushes
// it before returning, so consecutive small pieces share one w.Write (one TLS
// record) while large chunks pass straight through. Use it with *tls.Conn.
func (c *Copier) WriteBuffered(w io.Writer, pieces []wire.Piece) (int64, error) {
	bw := c.writers.Get().(*bufio.Writer)
	bw.Reset(w)
	n, err := c.Write(bw, pieces)
	if err == nil {
		if ferr := bw.Flush(); ferr != nil {
			err = fmt.Errorf("fetch: copy: flush: %w", ferr)
		}
	}
	bw.Reset(nil) // do not keep the connection reachable from the pool
	c.writers.Put(bw)
	return n, err
}

func (c *Copier) putChunk(b *[]byte) {
	if b != nil {
		c.chunks.Put(b)
	}
}

// copyRange copies one file range to w through buf and returns the bytes w
// accepted.
func copyRange(w io.Writer, p *wire.Piece, buf []byte) (int64, error) {
	if badRange(p) {
		return 0, fmt.Errorf("fetch: copy %s: range pos=%d len=%d: %w", p.File.Name(), p.Pos, p.Len, ErrInvalidPiece)
	}
	var written int64
	off, end := p.Pos, p.Pos+p.Len
	for off < end {
		b := buf[:min(int64(len(buf)), end-off)]
		n, err := p.File.ReadAt(b, off)
		if n < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				err = ErrShortFile
			}
			return written, fmt.Errorf("fetch: copy %s at %d (range %d+%d): %w", p.File.Name(), off+int64(n), p.Pos, p.Len, err)
		}
		// n == len(b): an io.EOF that came with a full read is no error.
		m, err := w.Write(b)
		written += int64(m)
		if err != nil {
			return written, fmt.Errorf("fetch: copy: write: %w", err)
		}
		off += int64(n)
	}
	return written, nil
}
