package fetch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

func TestDefaultCopierConfigValid(t *testing.T) {
	if err := DefaultCopierConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []CopierConfig{{}, {ChunkBytes: 100, BufferBytes: 4096}, {ChunkBytes: 1 << 16, BufferBytes: 1}, {ChunkBytes: 1 << 30, BufferBytes: 4096}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
		if _, err := NewCopier(bad); err == nil {
			t.Errorf("NewCopier(%+v) = nil error, want an error", bad)
		}
	}
}

func TestWriteCopyTLS(t *testing.T) {
	ps, files := mixedPieces(t)
	for _, f := range files {
		if _, err := f.Seek(77, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewCopier(CopierConfig{ChunkBytes: 64 << 10, BufferBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	send, recv := tlsPair(t)
	// A slow reader: 1 KiB reads, so the TLS writer blocks on a full socket.
	got := readN(recv, len(ps.want), 1<<10, nil)
	n, err := c.WriteBuffered(send, ps.pieces)
	if err != nil {
		t.Fatalf("WriteBuffered: %v", err)
	}
	if n != int64(len(ps.want)) {
		t.Fatalf("WriteBuffered = %d, want %d", n, len(ps.want))
	}
	r := waitRead(t, got)
	if r.err != nil {
		t.Fatalf("read: %v", r.err)
	}
	checkBytes(t, r.data, ps.want)
	for _, f := range files {
		if off := fileOffset(t, f); off != 77 {
			t.Fatalf("file offset of %s = %d after WriteBuffered, want 77 (unchanged)", f.Name(), off)
		}
	}

	// The package-level WriteCopy over the same connection, unbuffered.
	got = readN(recv, len(ps.want), 0, nil)
	n, err = WriteCopy(send, ps.pieces)
	if err != nil || n != int64(len(ps.want)) {
		t.Fatalf("WriteCopy = %d, %v; want %d, nil", n, err, len(ps.want))
	}
	checkBytes(t, waitRead(t, got).data, ps.want)
}

func TestWriteCopyPlainTCP(t *testing.T) {
	ps, _ := mixedPieces(t)
	send, recv := tcpPair(t, 0)
	got := readN(recv, len(ps.want), 0, nil)
	n, err := defaultCopier.WriteBuffered(send, ps.pieces)
	if err != nil || n != int64(len(ps.want)) {
		t.Fatalf("WriteBuffered = %d, %v; want %d, nil", n, err, len(ps.want))
	}
	checkBytes(t, waitRead(t, got).data, ps.want)
}

func TestWriteCopyShortFile(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 1<<20, 11)
	ps := &pieceSet{}
	ps.bytes([]byte("header"))
	ps.rng(f, data, 0, 1<<20)
	ps.pieces[1].Len = 2 << 20 // claims more than the file holds
	var buf bytes.Buffer
	n, err := WriteCopy(&buf, ps.pieces)
	if !errors.Is(err, ErrShortFile) {
		t.Fatalf("WriteCopy error = %v, want ErrShortFile", err)
	}
	if n != int64(buf.Len()) || !bytes.Equal(buf.Bytes(), ps.want[:buf.Len()]) {
		t.Fatalf("WriteCopy = %d with %d bytes written; want a prefix of the expected bytes", n, buf.Len())
	}

	// Truncated underneath, over TLS.
	g, gdata := testFile(t, dir, 2<<20, 12)
	ps = &pieceSet{}
	ps.bytes([]byte("header"))
	ps.rng(g, gdata, 4096, 2<<20-4096)
	if err := os.Truncate(g.Name(), 1<<20); err != nil {
		t.Fatal(err)
	}
	send, recv := tlsPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, recv)
	}()
	if _, err := defaultCopier.WriteBuffered(send, ps.pieces); !errors.Is(err, ErrShortFile) {
		t.Fatalf("WriteBuffered over TLS error = %v, want ErrShortFile", err)
	}
	send.Close()
	<-done
}

// failWriter accepts limit bytes, then fails.
type failWriter struct{ limit int }

var errWriterFull = errors.New("writer full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.limit {
		n := w.limit
		w.limit = 0
		return n, errWriterFull
	}
	w.limit -= len(p)
	return len(p), nil
}

func TestWriteCopyWriteError(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 1<<20, 13)
	ps := &pieceSet{}
	ps.bytes([]byte("header"))
	ps.rng(f, data, 0, 1<<20)
	for _, limit := range []int{3, 100, 200 << 10} {
		n, err := WriteCopy(&failWriter{limit: limit}, ps.pieces)
		if !errors.Is(err, errWriterFull) || n != int64(limit) {
			t.Errorf("WriteCopy(limit %d) = %d, %v; want %d, errWriterFull", limit, n, err, limit)
		}
		_, err = defaultCopier.WriteBuffered(&failWriter{limit: limit}, ps.pieces)
		if !errors.Is(err, errWriterFull) {
			t.Errorf("WriteBuffered(limit %d) error = %v, want errWriterFull", limit, err)
		}
	}
}

func TestWriteCopyAllocs(t *testing.T) {
	dir := t.TempDir()
	f, data := testFile(t, dir, 4<<20, 14)
	ps := &pieceSet{}
	for pos := int64(0); pos < 4<<20; pos += 1 << 20 {
		ps.bytes([]byte("partition-header"))
		ps.rng(f, data, pos, 1<<20)
	}
	for name, write := range map[string]func() (int64, error){
		"WriteCopy":     func() (int64, error) { return WriteCopy(io.Discard, ps.pieces) },
		"WriteBuffered": func() (int64, error) { return defaultCopier.WriteBuffered(io.Discard, ps.pieces) },
	} {
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := write(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > allocSlack {
			t.Errorf("%s allocates %.2f times per call (4 MiB of ranges), want <= %d", name, allocs, allocSlack)
		}
	}
}
