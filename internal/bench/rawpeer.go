package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The raw baselines move the same bytes as a broker path with nothing but
// the system calls (and, for TLS, the cipher) that path cannot avoid. The
// sending or receiving server runs in its own process, started as
// `<Binary> bench raw-peer`, so the baseline has the broker's shape: two
// processes, each with its own Go runtime, on a loopback TCP connection, and
// the server's CPU is read from /proc like the broker's.
//
// Peer protocol, fetch modes (sendfile, copy, tls): the client writes one
// byte per pass it wants; the peer answers each with every file's bytes in
// order. Sink mode: the client writes an 8-byte big-endian length and that
// many bytes; the peer reads them chunk by chunk into a buffer, appends each
// chunk to its file (truncated first), and answers one byte. The peer serves
// --conns connections (each on its own goroutine, sharing the open files)
// and exits when the client closes them.

// Raw peer modes.
const (
	peerSendfile = "sendfile" // sendfile(2) from the files, explicit offset, chunk bytes per call
	peerCopy     = "copy"     // pread chunk bytes into a buffer, write(2) them
	peerTLS      = "tls"      // pread, then write through bufio (16 KiB) into crypto/tls
	peerSink     = "sink"     // receive into a buffer, write(2) to a file
)

// maxPeerRequests bounds the passes or sink rounds one peer serves.
const maxPeerRequests = 1 << 20

// ErrPeerUsage reports bad raw-peer arguments.
var ErrPeerUsage = errors.New("bench: raw-peer usage")

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// ServeRawPeer is the `sluice bench raw-peer` process: it opens its files,
// listens on a loopback port, prints "listening ADDR PASSBYTES" on stdout
// (PASSBYTES: the bytes of one pass, as sized now; 0 for the sink), serves
// --conns connections in the given mode and returns when the client closes
// them or ctx ends.
func ServeRawPeer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("raw-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; the peer has no user
	mode := fs.String("mode", "", "sendfile, copy, tls or sink")
	chunk := fs.Int("chunk", 1<<20, "bytes per sendfile/pread/read call")
	certFile := fs.String("cert", "", "TLS certificate (mode tls)")
	keyFile := fs.String("key", "", "TLS key (mode tls)")
	sinkPath := fs.String("sink-file", "", "file the sink writes (mode sink)")
	nconns := fs.Int("conns", 1, "connections to accept and serve in parallel (fetch modes)")
	var files stringList
	fs.Var(&files, "file", "source file (repeatable; fetch modes)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrPeerUsage, err)
	}
	if *chunk < 1 || *chunk > 1<<30 {
		return fmt.Errorf("%w: --chunk %d", ErrPeerUsage, *chunk)
	}
	if *nconns < 1 || *nconns > 64 || (*mode == peerSink && *nconns != 1) {
		return fmt.Errorf("%w: --conns %d", ErrPeerUsage, *nconns)
	}
	var serve func(net.Conn) error
	var passBytes int64
	switch *mode {
	case peerSendfile, peerCopy, peerTLS:
		if len(files) == 0 {
			return fmt.Errorf("%w: mode %s needs --file", ErrPeerUsage, *mode)
		}
		var tlsCfg *tls.Config
		if *mode == peerTLS {
			pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				return fmt.Errorf("bench: raw-peer key pair: %w", err)
			}
			tlsCfg = &tls.Config{Certificates: []tls.Certificate{pair}}
		}
		src, err := openSources(files)
		if err != nil {
			return err
		}
		defer src.close()
		passBytes = src.total
		serve = func(c net.Conn) error { return servePasses(c, *mode, src, *chunk, tlsCfg) }
	case peerSink:
		if *sinkPath == "" {
			return fmt.Errorf("%w: mode sink needs --sink-file", ErrPeerUsage)
		}
		serve = func(c net.Conn) error { return serveSink(c, *sinkPath, *chunk) }
	default:
		return fmt.Errorf("%w: --mode %q", ErrPeerUsage, *mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: raw-peer listen: %w", err)
	}
	stopLn := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopLn()
	if _, err := fmt.Fprintf(stdout, "listening %s %d\n", ln.Addr(), passBytes); err != nil {
		ln.Close()
		return fmt.Errorf("bench: raw-peer: %w", err)
	}
	conns := make([]net.Conn, 0, *nconns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range *nconns {
		c, err := ln.Accept()
		if err != nil {
			ln.Close()
			return fmt.Errorf("bench: raw-peer accept: %w", err)
		}
		conns = append(conns, c)
	}
	ln.Close()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()
	// One goroutine per connection, as a server with one handler per client.
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = serve(c); errs[i] != nil {
				for _, o := range conns { // fail the others too rather than leave them waiting
					o.Close()
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sources are the files a fetch-mode peer sends, sized once at start: a
// file that shrinks later fails the pass instead of sending less.
type sources struct {
	files []*os.File
	sizes []int64
	total int64
}

func openSources(names []string) (*sources, error) {
	s := &sources{}
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("bench: raw-peer: %w", err)
		}
		s.files = append(s.files, f)
		st, err := f.Stat()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("bench: raw-peer: %w", err)
		}
		s.sizes = append(s.sizes, st.Size())
		s.total += st.Size()
	}
	if s.total == 0 {
		s.close()
		return nil, fmt.Errorf("bench: raw-peer: %d empty file(s)", len(names))
	}
	return s, nil
}

func (s *sources) close() {
	for _, f := range s.files {
		f.Close()
	}
}

// servePasses answers each request byte with one pass over the files.
func servePasses(c net.Conn, mode string, src *sources, chunk int, tlsCfg *tls.Config) error {
	files, sizes := src.files, src.sizes
	var rw io.ReadWriter = c
	var pass func() error
	switch mode {
	case peerSendfile:
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return fmt.Errorf("bench: raw-peer: %T is not TCP", c)
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			return fmt.Errorf("bench: raw-peer: %w", err)
		}
		pass = func() error { return sendfilePass(rc, files, sizes, chunk) }
	case peerCopy:
		buf := make([]byte, chunk)
		pass = func() error { return copyPass(c, files, sizes, buf) }
	case peerTLS:
		tc := tls.Server(c, tlsCfg)
		rw = tc
		bw := bufio.NewWriterSize(tc, 16<<10)
		buf := make([]byte, chunk)
		pass = func() error {
			if err := copyPass(bw, files, sizes, buf); err != nil {
				return err
			}
			return bw.Flush()
		}
	}
	req := make([]byte, 1)
	for range maxPeerRequests {
		if _, err := io.ReadFull(rw, req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the client is done
			}
			return fmt.Errorf("bench: raw-peer request: %w", err)
		}
		if err := pass(); err != nil {
			return err
		}
	}
	return fmt.Errorf("bench: raw-peer: more than %d requests", maxPeerRequests)
}

// sendfilePass sends every file with sendfile(2) inside the connection's
// RawConn.Write, so the goroutine parks in the poller while the socket is
// full, as a Go server does.
func sendfilePass(rc syscall.RawConn, files []*os.File, sizes []int64, chunk int) error {
	for i, f := range files {
		fc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("bench: raw-peer: %w", err)
		}
		var off int64
		var serr error
		cerr := fc.Control(func(src uintptr) {
			werr := rc.Write(func(dst uintptr) bool {
				for off < sizes[i] {
					n, err := unix.Sendfile(int(dst), int(src), &off, int(min(int64(chunk), sizes[i]-off)))
					switch {
					case errors.Is(err, unix.EAGAIN):
						return false // wait until writable
					case errors.Is(err, unix.EINTR):
						continue
					case err != nil:
						serr = fmt.Errorf("bench: sendfile: %w", err)
						return true
					case n == 0:
						serr = fmt.Errorf("bench: sendfile: %s shrank at %d", f.Name(), off)
						return true
					}
				}
				return true
			})
			if serr == nil && werr != nil {
				serr = fmt.Errorf("bench: sendfile: %w", werr)
			}
		})
		if cerr != nil {
			return fmt.Errorf("bench: raw-peer: %w", cerr)
		}
		if serr != nil {
			return serr
		}
	}
	return nil
}

// copyPass preads each file into buf and writes it to w.
func copyPass(w io.Writer, files []*os.File, sizes []int64, buf []byte) error {
	for i, f := range files {
		for off := int64(0); off < sizes[i]; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), sizes[i]-off)], off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return fmt.Errorf("bench: raw-peer write: %w", werr)
				}
			}
			if n == 0 || (err != nil && !errors.Is(err, io.EOF)) {
				return fmt.Errorf("bench: pread %s at %d: %w (read %d)", f.Name(), off, err, n)
			}
			off += int64(n)
		}
	}
	return nil
}

// serveSink receives length-prefixed rounds into a file.
func serveSink(c net.Conn, path string, chunk int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("bench: raw-peer sink: %w", err)
	}
	defer f.Close()
	buf := make([]byte, chunk)
	var hdr [8]byte
	for range maxPeerRequests {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("bench: raw-peer sink: %w", err)
		}
		size := int64(binary.BigEndian.Uint64(hdr[:]))
		if size < 0 || size > 1<<40 {
			return fmt.Errorf("bench: raw-peer sink: round of %d bytes", size)
		}
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("bench: raw-peer sink: %w", err)
		}
		for off := int64(0); off < size; {
			n, err := io.ReadFull(c, buf[:min(int64(chunk), size-off)])
			if err != nil {
				return fmt.Errorf("bench: raw-peer sink receive: %w", err)
			}
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return fmt.Errorf("bench: raw-peer sink write: %w", err)
			}
			off += int64(n)
		}
		if _, err := c.Write([]byte{1}); err != nil {
			return fmt.Errorf("bench: raw-peer sink ack: %w", err)
		}
	}
	return fmt.Errorf("bench: raw-peer: more than %d rounds", maxPeerRequests)
}
