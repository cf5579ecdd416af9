//go:build linux

package fetch

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sluice-io/sluice/wire"
)

const (
	// maxSendfileChunk bounds a single sendfile(2) call. Linux caps one call
	// at 0x7ffff000 bytes; a non-blocking socket returns far earlier anyway.
	maxSendfileChunk = 1 << 30
	// maxIOV is IOV_MAX on Linux: the most buffers one writev(2) accepts.
	maxIOV = 1024
)

// WriteSendfile writes pieces to conn, a plaintext stream socket (normally a
// *net.TCPConn), without copying file ranges through user space: byte pieces
// go out with writev(2), file ranges with sendfile(2) at an explicit offset.
// TCP_CORK is held for the duration so headers and records share packets.
//
// It returns the number of bytes written. On any error the frame on the wire
// is incomplete and the caller must close the connection; a file that is
// shorter than its range yields an error wrapping ErrShortFile. Write
// deadlines set on conn are honoured. Neither the pieces nor the files'
// offsets are modified.
func WriteSendfile(conn syscall.Conn, pieces []wire.Piece) (int64, error) {
	s := senderPool.Get().(*sender)
	n, err := s.send(conn, pieces)
	s.reset()
	senderPool.Put(s)
	return n, err
}

// senderPool holds reusable senders so a call allocates no scratch. With
// defaultCopier it is the package's only package-level state, and carries no
// observable behaviour, only scratch memory.
var senderPool = sync.Pool{New: func() any { return newSender() }}

// sender is the state of one WriteSendfile call. Its callbacks are method
// values bound once at construction, so the RawConn callbacks do not
// allocate a closure per piece.
type sender struct {
	rc      syscall.RawConn
	bufs    [][]byte // byte pieces not yet written (views of the caller's slices)
	fileFD  int      // fd of the file being sent, valid inside withFile only
	off     int64    // next file offset to send; advanced by the kernel
	end     int64    // file offset where the current range ends
	written int64
	opErr   error // error from the last syscall callback
	waitErr error // error from RawConn.Write around a file range (deadline, closed)
	corkVal int
	corkErr error

	writeBytesFn func(uintptr) bool
	sendRangeFn  func(uintptr) bool
	withFileFn   func(uintptr)
	setCorkFn    func(uintptr)

	parks  int    // times a callback hit EAGAIN and parked (tests)
	onPark func() // test hook, called on every park
	noCork bool   // benchmark hook: measure what the cork buys
}

func newSender() *sender {
	s := &sender{bufs: make([][]byte, 0, 16)}
	s.writeBytesFn = s.writeBytes
	s.sendRangeFn = s.sendRange
	s.withFileFn = s.withFile
	s.setCorkFn = s.setCork
	return s
}

func (s *sender) reset() {
	clear(s.bufs[:cap(s.bufs)]) // drop references to the caller's memory
	s.bufs = s.bufs[:0]
	s.rc = nil
	s.fileFD = -1
	s.off, s.end, s.written = 0, 0, 0
	s.opErr, s.waitErr, s.corkErr = nil, nil, nil
	s.parks = 0
	s.onPark = nil
	s.noCork = false
}

func (s *sender) send(conn syscall.Conn, pieces []wire.Piece) (int64, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("fetch: sendfile: raw conn: %w", err)
	}
	s.rc = rc
	corked := false
	if !s.noCork {
		if corked, err = s.cork(1); err != nil {
			return 0, err
		}
	}
	err = s.sendPieces(pieces)
	if corked {
		// Uncork even after an error: a connection the caller is about to
		// close must not hold back what it has already accepted either.
		if _, uerr := s.cork(0); err == nil && uerr != nil {
			err = uerr
		}
	}
	return s.written, err
}

// cork sets TCP_CORK to v. It reports whether the option took effect: a
// socket that is not TCP (a Unix socket in a test, say) is sent uncorked.
// Only a dead connection is an error.
func (s *sender) cork(v int) (bool, error) {
	s.corkVal, s.corkErr = v, nil
	if err := s.rc.Control(s.setCorkFn); err != nil {
		return false, fmt.Errorf("fetch: sendfile: cork=%d: %w", v, err)
	}
	return s.corkErr == nil, nil
}

func (s *sender) setCork(fd uintptr) {
	s.corkErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, s.corkVal)
}

func (s *sender) sendPieces(pieces []wire.Piece) error {
	for i := 0; i < len(pieces); {
		if pieces[i].File != nil {
			if err := s.sendFileRange(&pieces[i]); err != nil {
				return err
			}
			i++
			continue
		}
		// Coalesce a run of byte pieces into one writev.
		s.bufs = s.bufs[:0]
		for i < len(pieces) && pieces[i].File == nil && len(s.bufs) < maxIOV {
			if b := pieces[i].Bytes; len(b) > 0 {
				s.bufs = append(s.bufs, b)
			}
			i++
		}
		if err := s.writeBufs(); err != nil {
			return err
		}
	}
	return nil
}

func (s *sender) writeBufs() error {
	if len(s.bufs) == 0 {
		return nil
	}
	s.opErr = nil
	if err := s.rc.Write(s.writeBytesFn); err != nil {
		return fmt.Errorf("fetch: sendfile: writev: %w", err)
	}
	if s.opErr != nil {
		return fmt.Errorf("fetch: sendfile: writev: %w", s.opErr)
	}
	return nil
}

// writeBytes runs inside RawConn.Write: returning false parks the goroutine
// on the poller until the socket is writable (or the deadline passes).
func (s *sender) writeBytes(fd uintptr) bool {
	for len(s.bufs) > 0 {
		n, err := unix.Writev(int(fd), s.bufs)
		if n > 0 {
			s.written += int64(n)
			s.consume(n)
		}
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			s.parked()
			return false
		case err != nil:
			s.opErr = err
			return true
		case n == 0:
			s.opErr = io.ErrShortWrite
			return true
		}
	}
	return true
}

// consume drops n written bytes from the front of s.bufs.
func (s *sender) consume(n int) {
	i := 0
	for i < len(s.bufs) && n >= len(s.bufs[i]) {
		n -= len(s.bufs[i])
		s.bufs[i] = nil
		i++
	}
	s.bufs = s.bufs[i:]
	if n > 0 {
		s.bufs[0] = s.bufs[0][n:]
	}
}

func (s *sender) sendFileRange(p *wire.Piece) error {
	if badRange(p) {
		return fmt.Errorf("fetch: sendfile %s: range pos=%d len=%d: %w", p.File.Name(), p.Pos, p.Len, ErrInvalidPiece)
	}
	if p.Len == 0 {
		return nil
	}
	// The fd is borrowed through Control rather than File.Fd: Fd would switch
	// the file to blocking mode and, worse, does not stop a concurrent Close
	// from releasing the number for reuse while sendfile still uses it.
	fc, err := p.File.SyscallConn()
	if err != nil {
		return fmt.Errorf("fetch: sendfile %s: %w", p.File.Name(), err)
	}
	s.off, s.end = p.Pos, p.Pos+p.Len
	s.opErr, s.waitErr = nil, nil
	cerr := fc.Control(s.withFileFn)
	switch {
	case cerr != nil:
		// Control fails only on a closed file; say so in os terms, as
		// File.ReadAt does on the copy path.
		return fmt.Errorf("fetch: sendfile %s: %w (%v)", p.File.Name(), os.ErrClosed, cerr)
	case s.waitErr != nil:
		return fmt.Errorf("fetch: sendfile %s at %d: %w", p.File.Name(), s.off, s.waitErr)
	case s.opErr != nil:
		return fmt.Errorf("fetch: sendfile %s at %d (range %d+%d): %w", p.File.Name(), s.off, p.Pos, p.Len, s.opErr)
	}
	return nil
}

// withFile runs inside the file's RawConn.Control, which keeps the file
// descriptor alive (a concurrent Close defers the close(2)) for as long as
// the send takes, including time parked on a slow socket.
func (s *sender) withFile(ffd uintptr) {
	s.fileFD = int(ffd)
	s.waitErr = s.rc.Write(s.sendRangeFn)
	s.fileFD = -1
}

// sendRange runs inside the socket's RawConn.Write. The kernel advances
// s.off by what it sent; the file's own offset is never used or moved.
func (s *sender) sendRange(fd uintptr) bool {
	for s.off < s.end {
		n, err := unix.Sendfile(int(fd), s.fileFD, &s.off, int(min(s.end-s.off, maxSendfileChunk)))
		if n > 0 {
			s.written += int64(n)
		}
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			s.parked()
			return false
		case err != nil:
			s.opErr = err
			return true
		case n == 0:
			// End of file before the end of the range: truncated underneath.
			s.opErr = ErrShortFile
			return true
		}
	}
	return true
}

func (s *sender) parked() {
	s.parks++
	if s.onPark != nil {
		s.onPark()
	}
}
