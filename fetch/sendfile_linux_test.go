//go:build linux

package fetch

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-io/sluice/wire"
)

func corkValue(tb testing.TB, c syscall.Conn) int {
	tb.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK)
	}); err != nil {
		tb.Fatal(err)
	}
	if gerr != nil {
		tb.Fatal(gerr)
	}
	return v
}

func TestWriteSendfileMixed(t *testing.T) {
	ps, files := mixedPieces(t)
	for _, f := range files {
		if _, err := f.Seek(123, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	send, recv := tcpPair(t, 0)
	got := readN(recv, len(ps.want), 0, nil)
	n, err := WriteSendfile(send, ps.pieces)
	if err != nil {
		t.Fatalf("WriteSendfile: %v", err)
	}
	if n != int64(len(ps.want)) {
		t.Fatalf("WriteSendfile = %d, want %d", n, len(ps.want))
	}
	r := waitRead(t, got)
	if r.err != nil {
		t.Fatalf("read: %v", r.err)
	}
	checkBytes(t, r.data, ps.want)
	if v := corkValue(t, send); v != 0 {
		t.Fatalf("TCP_CORK = %d after WriteSendfile, want 0", v)
	}
	for _, f := range files {
		if off := fileOffset(t, f); off != 123 {
			t.Fatalf("file offset of %s = %d after WriteSendfile, want 123 (unchanged)", f.Name(), off)
		}
	}
	// The connection stays usable for the next response.
	ps2 := &pieceSet{}
	ps2.bytes([]byte("next"))
	got = readN(recv, len(ps2.want), 0, nil)
	if _, err := WriteSendfile(send, ps2.pieces); err != nil {
		t.Fatal(err)
	}
	checkBytes(t, waitRead(t, got).data, ps2.want)
}

func TestWriteSendfileSlowReader(t *testing.T) {
	ps, _ := mixedPieces(t)
	send, recv := tcpPair(t, 4<<10)
	start := make(chan struct{})
	var once sync.Once
	s := newSender()
	// The reader starts only once the sender has filled the socket buffers
	// and parked on EAGAIN; from then on it reads 1 KiB at a time.
	s.onPark = func() { once.Do(func() { close(start) }) }
	got := readN(recv, len(ps.want), 1<<10, start)
	n, err := s.send(send, ps.pieces)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if n != int64(len(ps.want)) {
		t.Fatalf("send = %d, want %d", n, len(ps.want))
	}
	if s.parks == 0 {
		t.Fatal("sender never parked on EAGAIN")
	}
	r := waitRead(t, got)
	if r.err != nil {
		t.Fatalf("read: %v", r.err)
	}
	checkBytes(t, r.data, ps.want)
	t.Logf("parked %d times", s.parks)
}

func TestWriteSendfileManyByteRuns(t *testing.T) {
	// More byte pieces in a row than one writev accepts (IOV_MAX).
	ps := &pieceSet{}
	for i := 0; i < 3000; i++ {
		ps.bytes([]byte{byte(i), byte(i >> 8), 0xAB})
	}
	send, recv := tcpPair(t, 0)
	got := readN(recv, len(ps.want), 0, nil)
	n, err := WriteSendfile(send, ps.pieces)
	if err != nil || n != int64(len(ps.want)) {
		t.Fatalf("WriteSendfile = %d, %v; want %d, nil", n, err, len(ps.want))
	}
	checkBytes(t, waitRead(t, got).data, ps.want)
	if ps.pieces[0].Bytes[0] != 0 || len(ps.pieces[2999].Bytes) != 3 {
		t.Fatal("WriteSendfile modified the caller's pieces")
	}
}

func TestWriteSendfileShortFile(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 4<<20, 3)
	ps := &pieceSet{}
	ps.bytes([]byte("header"))
	ps.rng(f, data, 1<<20, 3<<20)
	ps.bytes([]byte("after"))
	// Truncate underneath, as if retention deleted the tail after the frame
	// size was computed: only 1 MiB of the 3 MiB range remains.
	if err := os.Truncate(f.Name(), 2<<20); err != nil {
		t.Fatal(err)
	}
	send, recv := tcpPair(t, 0)
	got := readN(recv, len(ps.want), 0, nil)
	n, err := WriteSendfile(send, ps.pieces)
	if !errors.Is(err, ErrShortFile) {
		t.Fatalf("WriteSendfile error = %v, want ErrShortFile", err)
	}
	wantN := int64(len("header") + 1<<20)
	if n != wantN {
		t.Fatalf("WriteSendfile = %d, want %d (header + what the file still had)", n, wantN)
	}
	if v := corkValue(t, send); v != 0 {
		t.Fatalf("TCP_CORK = %d after a failed WriteSendfile, want 0", v)
	}
	send.Close() // what the caller must do
	r := waitRead(t, got)
	if !errors.Is(r.err, io.EOF) {
		t.Fatalf("reader error = %v, want EOF after the sender closed", r.err)
	}
	checkBytes(t, r.data, ps.want[:wantN])
}

func TestWriteSendfileDeadline(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 32<<20, 4)
	ps := &pieceSet{}
	ps.bytes([]byte("header"))
	ps.rng(f, data, 0, int64(len(data)))
	send, _ := tcpPair(t, 4<<10) // the reader never reads
	if err := send.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := WriteSendfile(send, ps.pieces)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteSendfile = %d, %v; want os.ErrDeadlineExceeded", n, err)
	}
	if n >= int64(len(ps.want)) {
		t.Fatalf("WriteSendfile wrote %d of %d bytes despite a blocked reader", n, len(ps.want))
	}
	if v := corkValue(t, send); v != 0 {
		t.Fatalf("TCP_CORK = %d after a deadline error, want 0", v)
	}

	// A deadline already in the past fails before anything is written.
	send2, _ := tcpPair(t, 4<<10)
	if err := send2.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteSendfile(send2, ps.pieces); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteSendfile with a past deadline = %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestWriteSendfileBadInput(t *testing.T) {
	dir := t.TempDir()
	f, _ := testFile(t, dir, 4096, 5)
	closed, _ := testFile(t, dir, 4096, 6)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		piece wire.Piece
		want  error
	}{
		{"negative pos", wire.Piece{File: f, Pos: -1, Len: 10}, ErrInvalidPiece},
		{"negative len", wire.Piece{File: f, Pos: 0, Len: -10}, ErrInvalidPiece},
		{"overflow", wire.Piece{File: f, Pos: 1 << 62, Len: 1 << 62}, ErrInvalidPiece},
		{"past end", wire.Piece{File: f, Pos: 8192, Len: 1}, ErrShortFile},
		{"closed file", wire.Piece{File: closed, Pos: 0, Len: 10}, os.ErrClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			send, _ := tcpPair(t, 0)
			_, err := WriteSendfile(send, []wire.Piece{tc.piece})
			if !errors.Is(err, tc.want) {
				t.Fatalf("WriteSendfile(%+v) = %v, want %v", tc.piece, err, tc.want)
			}
			t.Run("copy", func(t *testing.T) {
				_, err := WriteCopy(io.Discard, []wire.Piece{tc.piece})
				if !errors.Is(err, tc.want) {
					t.Fatalf("WriteCopy(%+v) = %v, want %v", tc.piece, err, tc.want)
				}
			})
		})
	}
}

func TestWriteSendfileClosedConn(t *testing.T) {
	send, _ := tcpPair(t, 0)
	send.Close()
	ps := &pieceSet{}
	ps.bytes([]byte("x"))
	if _, err := WriteSendfile(send, ps.pieces); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteSendfile on a closed conn = %v, want net.ErrClosed", err)
	}
}

func TestWriteSendfilePeerGone(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 16<<20, 7)
	ps := &pieceSet{}
	ps.rng(f, data, 0, int64(len(data)))
	send, recv := tcpPair(t, 4<<10)
	recv.SetLinger(0)
	recv.Close() // RST: the sender's next write fails
	_, err := WriteSendfile(send, ps.pieces)
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("WriteSendfile to a reset peer = %v, want ECONNRESET or EPIPE", err)
	}
}

// A Unix socket has no TCP_CORK; WriteSendfile sends uncorked.
func TestWriteSendfileUnixSocket(t *testing.T) {
	ps, _ := mixedPieces(t)
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.UnixConn, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	recv, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	send := <-accepted
	if send == nil {
		t.Fatal("accept failed")
	}
	defer send.Close()
	got := readN(recv, len(ps.want), 0, nil)
	n, err := WriteSendfile(send, ps.pieces)
	if err != nil || n != int64(len(ps.want)) {
		t.Fatalf("WriteSendfile = %d, %v; want %d, nil", n, err, len(ps.want))
	}
	checkBytes(t, waitRead(t, got).data, ps.want)
}

func TestWriteSendfileAllocs(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 1<<20, 8)
	ps := &pieceSet{}
	for pos := int64(0); pos < 1<<20; pos += 16 << 10 {
		ps.bytes([]byte("batch-header"))
		ps.rng(f, data, pos, 16<<10)
	}
	send, recv := tcpPair(t, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, recv)
	}()
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := WriteSendfile(send, ps.pieces); err != nil {
			t.Fatal(err)
		}
	})
	// One small rawConn from conn.SyscallConn per call and one per file range
	// from File.SyscallConn; nothing sized by the data.
	if limit := float64(1+len(ps.pieces)/2) + allocSlack; allocs > limit {
		t.Fatalf("WriteSendfile allocates %.1f per call, want <= %.0f", allocs, limit)
	}
	t.Logf("WriteSendfile: %.1f allocs per call for %d ranges", allocs, len(ps.pieces)/2)
	send.CloseWrite()
	<-done
}
