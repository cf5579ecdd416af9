//go:build linux

package fetch

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluice-io/sluice/wire"
)

// Same-run baselines and the two writers, over loopback. Every benchmark
// moves about 1 MiB per op to a reader goroutine that discards it.
//
//	go test -run '^$' -bench . -benchtime 1s -count 5 ./fetch
//
// cpu-s/GB is process CPU (user+system, from getrusage) per 10^9 bytes: both
// ends of the loopback connection, TLS decryption in the reader included.

const (
	benchFileBytes = 64 << 20 // page-cached segment stand-in
	benchOpBytes   = 1 << 20  // one fetch response's records
	benchHeader    = 40       // bytes before each range (partition/batch header stand-in)
)

type benchEnv struct {
	file *os.File
	data []byte
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	f, data := testFile(b, b.TempDir(), benchFileBytes, 99)
	// The file was just written, so its pages are cached; read it once
	// anyway so the first op does not pay for any that were dropped.
	if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, benchFileBytes)); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{file: f, data: data}
}

// pieces returns one response's pieces starting at file offset pos: ranges
// of rangeBytes, each preceded by a small header piece.
func (e *benchEnv) pieces(pos int64, rangeBytes int64, dst []wire.Piece) ([]wire.Piece, int64) {
	hdr := e.data[:benchHeader] // any bytes will do
	dst = dst[:0]
	var total int64
	for off := int64(0); off < benchOpBytes; off += rangeBytes {
		dst = append(dst, wire.Piece{Bytes: hdr}, wire.Piece{File: e.file, Pos: pos + off, Len: rangeBytes})
		total += benchHeader + rangeBytes
	}
	return dst, total
}

// drain reads r until EOF with large reads, in its own goroutine; the
// returned func closes w (the sending side) and waits for the reader.
func drain(b *testing.B, r io.Reader, closeSend func() error) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	return func() {
		if err := closeSend(); err != nil {
			b.Error(err)
		}
		<-done
	}
}

// cpuMeter reports process CPU seconds per GB moved as "cpu-s/GB".
type cpuMeter struct{ start syscall.Rusage }

func startCPU(b *testing.B) *cpuMeter {
	m := &cpuMeter{}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &m.start); err != nil {
		b.Fatal(err)
	}
	return m
}

func (m *cpuMeter) report(b *testing.B, totalBytes int64) {
	var end syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &end); err != nil {
		b.Fatal(err)
	}
	sec := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	cpu := sec(end.Utime) - sec(m.start.Utime) + sec(end.Stime) - sec(m.start.Stime)
	if totalBytes > 0 {
		b.ReportMetric(cpu/(float64(totalBytes)/1e9), "cpu-s/GB")
	}
}

// dataSegs returns the data segments the socket has sent so far (TCP_INFO).
func dataSegs(b *testing.B, c syscall.Conn) uint32 {
	rc, err := c.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		b.Fatal(err, gerr)
	}
	return info.Data_segs_out
}

// reportSegs reports data segments per op ("segs/op": fewer, fuller
// segments is what the cork is for).
func reportSegs(b *testing.B, c syscall.Conn, start uint32, ops int) {
	if ops > 0 {
		b.ReportMetric(float64(dataSegs(b, c)-start)/float64(ops), "segs/op")
	}
}

// nextPos cycles through the file one op at a time.
func nextPos(pos int64) int64 {
	pos += benchOpBytes
	if pos+benchOpBytes > benchFileBytes {
		pos = 0
	}
	return pos
}

// BenchmarkRawSendfile is the floor for the plaintext path: a bare
// sendfile(2) loop of 1 MiB per op inside RawConn.Write, no pieces, no cork.
func BenchmarkRawSendfile(b *testing.B) {
	e := newBenchEnv(b)
	send, recv := tcpPair(b, 0)
	stop := drain(b, recv, send.CloseWrite)
	defer stop()
	rc, err := send.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	fd := int(e.file.Fd())
	var off, end int64
	var serr error
	write := func(sock uintptr) bool {
		for off < end {
			_, err := unix.Sendfile(int(sock), fd, &off, int(end-off))
			if err == unix.EAGAIN {
				return false
			}
			if err != nil && err != unix.EINTR {
				serr = err
				return true
			}
		}
		return true
	}
	b.SetBytes(benchOpBytes)
	b.ReportAllocs()
	segs := dataSegs(b, send)
	cpu := startCPU(b)
	var pos, total int64
	ops := 0
	for b.Loop() {
		ops++
		off, end = pos, pos+benchOpBytes
		if err := rc.Write(write); err != nil || serr != nil {
			b.Fatal(err, serr)
		}
		total += benchOpBytes
		pos = nextPos(pos)
	}
	cpu.report(b, total)
	reportSegs(b, send, segs, ops)
}

// BenchmarkWriteSendfile sends realistic responses: 1 MiB of records as
// ranges of the given size, each after a 40-byte header piece. The
// cork=off case is the same writer without TCP_CORK, for comparison only.
func BenchmarkWriteSendfile(b *testing.B) {
	for _, tc := range []struct {
		rangeBytes int64
		noCork     bool
	}{{16 << 10, false}, {1 << 20, false}, {16 << 10, true}} {
		rangeBytes := tc.rangeBytes
		name := fmt.Sprintf("range=%dKiB", rangeBytes>>10)
		if tc.noCork {
			name += "/cork=off"
		}
		b.Run(name, func(b *testing.B) {
			e := newBenchEnv(b)
			send, recv := tcpPair(b, 0)
			stop := drain(b, recv, send.CloseWrite)
			defer stop()
			var pieces []wire.Piece
			_, opBytes := e.pieces(0, rangeBytes, nil)
			b.SetBytes(opBytes)
			b.ReportAllocs()
			segs := dataSegs(b, send)
			cpu := startCPU(b)
			var pos, total int64
			ops := 0
			s := newSender()
			for b.Loop() {
				ops++
				pieces, _ = e.pieces(pos, rangeBytes, pieces)
				s.noCork = tc.noCork
				_, err := s.send(send, pieces)
				s.reset()
				if err != nil {
					b.Fatal(err)
				}
				total += opBytes
				pos = nextPos(pos)
			}
			cpu.report(b, total)
			reportSegs(b, send, segs, ops)
		})
	}
}

// BenchmarkRawTLS is the floor for the TLS path: 1 MiB per op from memory
// through a bufio.Writer over tls.Conn.
func BenchmarkRawTLS(b *testing.B) {
	e := newBenchEnv(b)
	send, recv := tlsPair(b)
	stop := drain(b, recv, send.CloseWrite)
	defer stop()
	bw := bufio.NewWriterSize(send, 16<<10)
	b.SetBytes(benchOpBytes)
	b.ReportAllocs()
	cpu := startCPU(b)
	var pos, total int64
	for b.Loop() {
		if _, err := bw.Write(e.data[pos : pos+benchOpBytes]); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		total += benchOpBytes
		pos = nextPos(pos)
	}
	cpu.report(b, total)
}

// BenchmarkWriteCopyTLS sends the same responses as BenchmarkWriteSendfile
// through Copier.WriteBuffered over TLS, for several chunk sizes.
func BenchmarkWriteCopyTLS(b *testing.B) {
	for _, rangeBytes := range []int64{16 << 10, 1 << 20} {
		for _, chunk := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20} {
			if rangeBytes < int64(chunk) && chunk != 64<<10 {
				continue // a chunk larger than every range changes nothing
			}
			b.Run(fmt.Sprintf("range=%dKiB/chunk=%dKiB", rangeBytes>>10, chunk>>10), func(b *testing.B) {
				benchCopy(b, rangeBytes, chunk, func(tb testing.TB) (io.Writer, io.Reader, func() error) {
					send, recv := tlsPair(tb)
					return send, recv, send.CloseWrite
				})
			})
		}
	}
}

// BenchmarkWriteCopyPlain is the copying writer without TLS: the cost of
// pread+write that sendfile avoids.
func BenchmarkWriteCopyPlain(b *testing.B) {
	for _, rangeBytes := range []int64{16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("range=%dKiB", rangeBytes>>10), func(b *testing.B) {
			benchCopy(b, rangeBytes, 64<<10, func(tb testing.TB) (io.Writer, io.Reader, func() error) {
				send, recv := tcpPair(tb, 0)
				return send, recv, send.CloseWrite
			})
		})
	}
}

func benchCopy(b *testing.B, rangeBytes int64, chunk int, dial func(testing.TB) (io.Writer, io.Reader, func() error)) {
	e := newBenchEnv(b)
	c, err := NewCopier(CopierConfig{ChunkBytes: chunk, BufferBytes: 16 << 10})
	if err != nil {
		b.Fatal(err)
	}
	w, r, closeSend := dial(b)
	stop := drain(b, r, closeSend)
	defer stop()
	var pieces []wire.Piece
	_, opBytes := e.pieces(0, rangeBytes, nil)
	b.SetBytes(opBytes)
	b.ReportAllocs()
	cpu := startCPU(b)
	var pos, total int64
	for b.Loop() {
		pieces, _ = e.pieces(pos, rangeBytes, pieces)
		if _, err := c.WriteBuffered(w, pieces); err != nil {
			b.Fatal(err)
		}
		total += opBytes
		pos = nextPos(pos)
	}
	cpu.report(b, total)
}
