package fetch

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/wire"
)

// testFile writes size pseudo-random bytes to a new file in dir and returns
// it open for reading, with its contents.
func testFile(tb testing.TB, dir string, size int, seed uint64) (*os.File, []byte) {
	tb.Helper()
	data := make([]byte, size)
	r := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	w, err := os.CreateTemp(dir, "seg-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(w.Name())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f, data
}

// pieceSet accumulates pieces and the bytes they should produce.
type pieceSet struct {
	pieces []wire.Piece
	want   []byte
}

func (ps *pieceSet) bytes(b []byte) {
	ps.pieces = append(ps.pieces, wire.Piece{Bytes: b})
	ps.want = append(ps.want, b...)
}

func (ps *pieceSet) rng(f *os.File, data []byte, pos, n int64) {
	ps.pieces = append(ps.pieces, wire.Piece{File: f, Pos: pos, Len: n})
	ps.want = append(ps.want, data[pos:pos+n]...)
}

// tcpPair returns a connected loopback pair: the accepted side, which the
// tests send from, and the dialed side, which they read from. A positive
// rcvBuf sets SO_RCVBUF on the reader before connect (so the window is
// small from the start) and SO_SNDBUF on the sender.
func tcpPair(tb testing.TB, bufBytes int) (send, recv *net.TCPConn) {
	tb.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Timeout: 10 * time.Second}
	if bufBytes > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, bufBytes)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	accepted := make(chan *net.TCPConn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	dc, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	recv = dc.(*net.TCPConn)
	select {
	case send = <-accepted:
	case err := <-acceptErr:
		tb.Fatal(err)
	}
	if bufBytes > 0 {
		if err := send.SetWriteBuffer(bufBytes); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		send.Close()
		recv.Close()
	})
	return send, recv
}

// testCert returns a self-signed certificate for 127.0.0.1 and a pool
// trusting it.
func testCert(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice-fetch-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsPair returns a handshaken TLS pair over loopback: the server side,
// which the tests send from, and the client side, which they read from.
func tlsPair(tb testing.TB) (send, recv *tls.Conn) {
	tb.Helper()
	cert, pool := testCert(tb)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   *tls.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		tc := c.(*tls.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		accepted <- result{c: tc, err: tc.HandshakeContext(ctx)}
	}()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	recv = c.(*tls.Conn)
	r := <-accepted
	if r.err != nil {
		tb.Fatal(r.err)
	}
	send = r.c
	tb.Cleanup(func() {
		send.Close()
		recv.Close()
	})
	return send, recv
}

type readResult struct {
	data []byte
	err  error
}

// readN reads exactly n bytes from r in a goroutine, chunk bytes per Read
// (0 = as much as fits), after start is closed (nil = at once).
func readN(r io.Reader, n int, chunk int, start <-chan struct{}) <-chan readResult {
	out := make(chan readResult, 1)
	go func() {
		if start != nil {
			<-start
		}
		buf := make([]byte, n)
		got := 0
		for got < n {
			end := n
			if chunk > 0 {
				end = min(n, got+chunk)
			}
			m, err := r.Read(buf[got:end])
			got += m
			if err != nil {
				out <- readResult{buf[:got], err}
				return
			}
		}
		out <- readResult{buf, nil}
	}()
	return out
}

// waitRead waits for a readN result with a generous deadline.
func waitRead(tb testing.TB, ch <-chan readResult) readResult {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		tb.Fatal("reader did not finish within 60s")
		return readResult{}
	}
}

func checkBytes(tb testing.TB, got, want []byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("received %d bytes, want %d", len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		tb.Fatalf("received bytes differ from expected at offset %d of %d", i, len(want))
	}
}

func fileOffset(tb testing.TB, f *os.File) int64 {
	tb.Helper()
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		tb.Fatal(err)
	}
	return off
}

// mixedPieces builds a response-like mix: byte runs, adjacent ranges, empty
// pieces, and ranges of several MiB so sendfile returns partial counts.
func mixedPieces(tb testing.TB) (*pieceSet, []*os.File) {
	dir := tb.TempDir()
	f1, d1 := testFile(tb, dir, 6<<20, 1)
	f2, d2 := testFile(tb, dir, 5<<20+123, 2)
	ps := &pieceSet{}
	ps.bytes([]byte{0, 0, 0, 42, 1, 2, 3, 4})
	ps.rng(f1, d1, 0, 100)
	ps.bytes([]byte("partition-header"))
	ps.bytes([]byte("second-header"))
	ps.bytes(nil)
	ps.rng(f1, d1, 4096, 3<<20)
	ps.rng(f2, d2, 10, 5<<20)
	ps.rng(f1, d1, 17, 0)
	ps.bytes([]byte{9})
	ps.rng(f2, d2, 5<<20+23, 100) // ends exactly at EOF
	ps.rng(f1, d1, 3<<20, 3<<20)  // ends exactly at EOF
	ps.bytes([]byte("trailing-tags"))
	return ps, []*os.File{f1, f2}
}
