package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
)

func sized(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestReadFrame(t *testing.T) {
	body := []byte("hello, frame")
	cases := []struct {
		name    string
		in      []byte
		max     int32
		want    []byte
		wantErr error
	}{
		{"ok", sized(body), 0, body, nil},
		{"empty body", sized(nil), 0, []byte{}, nil},
		{"exactly max", sized(body), int32(len(body)), body, nil},
		{"one over max", sized(body), int32(len(body) - 1), nil, ErrFrameTooLarge},
		{"over default max", []byte{0x06, 0x40, 0x00, 0x01}, 0, nil, ErrFrameTooLarge},
		{"max int32", []byte{0x7f, 0xff, 0xff, 0xff}, 0, nil, ErrFrameTooLarge},
		{"negative", []byte{0xff, 0xff, 0xff, 0xfe, 1, 2}, 0, nil, ErrNegativeFrame},
		{"clean eof", nil, 0, nil, io.EOF},
		{"short size", []byte{0, 0}, 0, nil, ErrTruncatedFrame},
		{"short body", sized(body)[:8], 0, nil, ErrTruncatedFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tc.in), tc.max, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ReadFrame(%x) err = %v, want %v", tc.in, err, tc.wantErr)
			}
			if err == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("ReadFrame(%x) = %x, want %x", tc.in, got, tc.want)
			}
		})
	}
	if _, err := ReadFrame(bytes.NewReader(sized(body)[:8]), 0, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body should also wrap io.ErrUnexpectedEOF: %v", err)
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	stream := append(sized([]byte("first")), sized([]byte("second frame"))...)
	r := bytes.NewReader(stream)
	buf := make([]byte, 64)
	for _, want := range []string{"first", "second frame"} {
		got, err := ReadFrame(r, 0, buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want || &got[0] != &buf[0] {
			t.Fatalf("got %q (aliasing buf: %v), want %q in buf", got, &got[0] == &buf[0], want)
		}
	}
	if _, err := ReadFrame(r, 0, buf); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// bytesAllocated reports the heap bytes allocated while fn runs.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A rejected size costs nothing, and an announced-but-unsent body costs at
// most one growth chunk, not the announced size.
func TestReadFrameBoundedAllocation(t *testing.T) {
	huge := []byte{0x7f, 0xff, 0xff, 0xff}
	if n := bytesAllocated(func() {
		for range 100 {
			if _, err := ReadFrame(bytes.NewReader(huge), 0, nil); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatal(err)
			}
		}
	}); n > 100*1024 {
		t.Fatalf("rejecting 100 oversized frames allocated %d bytes", n)
	}
	liar := append(binary.BigEndian.AppendUint32(nil, 90<<20), "only this"...)
	if n := bytesAllocated(func() {
		if _, err := ReadFrame(bytes.NewReader(liar), 0, nil); !errors.Is(err, ErrTruncatedFrame) {
			t.Fatal(err)
		}
	}); n > 2*growChunk {
		t.Fatalf("a 90 MiB claim with 9 bytes of body allocated %d bytes", n)
	}
}

// Over a real socket, frames larger than the reusable buffer and larger than
// one growth chunk arrive intact, even when the peer writes in odd pieces.
func TestReadFrameOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := make([]byte, 3*growChunk+12345)
	for i := range big {
		big[i] = byte(i * 31)
	}
	frames := [][]byte{[]byte("small"), big, {}, []byte("after big")}
	writeErr := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			writeErr <- err
			return
		}
		defer c.Close()
		var stream []byte
		for _, f := range frames {
			stream = append(stream, sized(f)...)
		}
		for len(stream) > 0 { // odd-sized writes split the size prefix too
			n := min(len(stream), 7777)
			if _, err := c.Write(stream[:n]); err != nil {
				writeErr <- err
				return
			}
			stream = stream[n:]
		}
		writeErr <- nil
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1024)
	for i, want := range frames {
		got, err := ReadFrame(c, 0, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, want %d (equal prefix %v)", i, len(got), len(want), bytes.HasPrefix(want, got))
		}
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFrame(c, 0, buf); err != io.EOF {
		t.Fatalf("after peer close: %v, want io.EOF", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadFrameWrapsReadErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ReadFrame(errReader{boom}, 0, nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapping boom", err)
	}
	r := io.MultiReader(bytes.NewReader([]byte{0, 0, 0, 9, 1}), errReader{boom})
	if _, err := ReadFrame(r, 0, nil); !errors.Is(err, boom) || errors.Is(err, ErrTruncatedFrame) {
		t.Fatalf("body err = %v, want wrapping boom only", err)
	}
}

func BenchmarkReadFrame(b *testing.B) {
	frame := sized(make([]byte, 16<<10))
	r := bytes.NewReader(frame)
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		r.Reset(frame)
		if _, err := ReadFrame(r, 0, buf); err != nil {
			b.Fatal(err)
		}
	}
}
