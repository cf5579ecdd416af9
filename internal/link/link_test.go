package link

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testutil"
)

func newSecret(t testing.TB) []byte {
	t.Helper()
	return []byte(hex.EncodeToString(randBytes(t, 32)))
}

type server struct {
	l       *Listener
	logs    *testutil.Buffer
	refused chan Refusal
}

func startServer(t *testing.T, secret []byte, mutate func(*ListenerConfig)) *server {
	t.Helper()
	s := &server{logs: &testutil.Buffer{}, refused: make(chan Refusal, 64)}
	cfg := DefaultListenerConfig()
	cfg.Secret = secret
	cfg.SelfID = 1
	cfg.Logger = slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.OnRefused = func(r Refusal) { s.refused <- r }
	if mutate != nil {
		mutate(&cfg)
	}
	l, err := Listen(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.l = l
	t.Cleanup(func() { _ = l.Close() })
	return s
}

func (s *server) addr() string { return s.l.Addr().String() }

// accept waits for one authenticated connection with a deadline.
func (s *server) accept(t *testing.T) Accepted {
	t.Helper()
	type res struct {
		a   Accepted
		err error
	}
	ch := make(chan res, 1)
	go func() {
		a, err := s.l.Accept()
		ch <- res{a, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		t.Cleanup(func() { _ = r.a.Conn.Close() })
		return r.a
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted within 10s")
	}
	panic("unreachable")
}

// nextRefusal waits for the listener to refuse a connection.
func (s *server) nextRefusal(t *testing.T) Refusal {
	t.Helper()
	select {
	case r := <-s.refused:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no refusal within 10s")
	}
	panic("unreachable")
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHandshakeBothWays(t *testing.T) {
	secret := newSecret(t)
	s := startServer(t, secret, nil)
	for _, purpose := range []Purpose{PurposeRaft, PurposeFetch, PurposeControl} {
		t.Run(purpose.String(), func(t *testing.T) {
			conn, peer, err := Dial(dialCtx(t), s.addr(), secret, 2, purpose)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			if peer != 1 {
				t.Fatalf("Dial peer = %d, want 1", peer)
			}
			a := s.accept(t)
			if a.PeerID != 2 || a.Purpose != purpose {
				t.Fatalf("Accept = peer %d purpose %v, want 2 %v", a.PeerID, a.Purpose, purpose)
			}
			if _, ok := conn.(*net.TCPConn); !ok {
				t.Fatalf("dialed conn is %T, want *net.TCPConn", conn)
			}
			if _, ok := a.Conn.(*net.TCPConn); !ok {
				t.Fatalf("accepted conn is %T, want *net.TCPConn", a.Conn)
			}
			// Raw bytes flow both ways right after the handshake, with no
			// leftover handshake bytes in either direction.
			if _, err := conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(a.Conn, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("server read %q, %v", buf, err)
			}
			if _, err := a.Conn.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "pong" {
				t.Fatalf("client read %q, %v", buf, err)
			}
		})
	}
	if st := s.l.Stats(); st.Accepted != 3 || st.RefusedTotal() != 0 {
		t.Fatalf("Stats = %+v, want 3 accepted, 0 refused", st)
	}
}

// TestFileToAcceptedConn sends a file over the accepted connection through
// (*net.TCPConn).ReadFrom, the path that uses sendfile(2) on Linux.
func TestFileToAcceptedConn(t *testing.T) {
	secret := newSecret(t)
	s := startServer(t, secret, nil)
	conn, _, err := Dial(dialCtx(t), s.addr(), secret, 2, PurposeFetch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a := s.accept(t)
	payload := bytes.Repeat([]byte("sluice-segment-bytes "), 50_000)
	p := filepath.Join(t.TempDir(), "00000000000000000000.log")
	if err := os.WriteFile(p, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := a.Conn.(*net.TCPConn).ReadFrom(f)
		if err == nil {
			err = a.Conn.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("received %d bytes, want %d identical bytes", len(got), len(payload))
	}
}

func TestWrongSecretRefused(t *testing.T) {
	tests := []struct {
		name         string
		server, dial []byte
	}{
		{"client has wrong secret", newSecret(t), newSecret(t)},
		{"server has wrong secret", newSecret(t), newSecret(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.server, nil)
			_, _, err := Dial(dialCtx(t), s.addr(), tc.dial, 2, PurposeRaft)
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("Dial with mismatched secret = %v, want ErrAuth", err)
			}
			r := s.nextRefusal(t)
			if r.Reason != ReasonAuth || r.PeerID != 2 || r.Purpose != PurposeRaft {
				t.Fatalf("refusal = %+v, want auth from claimed node 2 for raft", r)
			}
			logs := s.logs.String()
			for _, want := range []string{"refused internal connection", "reason=auth", "remote_addr=127.0.0.1:", "claimed_node_id=2"} {
				if !strings.Contains(logs, want) {
					t.Fatalf("server log lacks %q:\n%s", want, logs)
				}
			}
			if st := s.l.Stats(); st.Accepted != 0 || st.Refused[ReasonAuth] != 1 {
				t.Fatalf("Stats = %+v", st)
			}
		})
	}
}

// TestForgedProofRefused is a peer that skips verifying the server and
// sends a made-up proof.
func TestForgedProofRefused(t *testing.T) {
	s := startServer(t, newSecret(t), nil)
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := hello{version: Version, purpose: PurposeRaft, nodeID: 9}
	hb := h.encode()
	if _, err := c.Write(hb[:]); err != nil {
		t.Fatal(err)
	}
	var cb [challengeSz]byte
	if _, err := io.ReadFull(c, cb[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bytes.Repeat([]byte{0x5a}, proofSize)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("server answered a forged proof with %d bytes", n)
	}
	if r := s.nextRefusal(t); r.Reason != ReasonAuth || r.PeerID != 9 {
		t.Fatalf("refusal = %+v, want auth from claimed node 9", r)
	}
}

func TestGarbageRefused(t *testing.T) {
	s := startServer(t, newSecret(t), nil)
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: broker\r\nUser-Agent: curl\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("server answered garbage with %d bytes", n)
	}
	r := s.nextRefusal(t)
	if r.Reason != ReasonProtocol || r.PeerID != -1 {
		t.Fatalf("refusal = %+v, want protocol with unknown peer", r)
	}
	if !strings.Contains(s.logs.String(), "reason=protocol") {
		t.Fatalf("server log lacks the refusal:\n%s", s.logs.String())
	}
}

func TestPurposeRefused(t *testing.T) {
	secret := newSecret(t)
	s := startServer(t, secret, func(c *ListenerConfig) { c.Purposes = []Purpose{PurposeRaft} })
	_, _, err := Dial(dialCtx(t), s.addr(), secret, 2, PurposeFetch)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrPurpose) {
		t.Fatalf("Dial(fetch) = %v, want ErrRefused and ErrPurpose", err)
	}
	if r := s.nextRefusal(t); r.Reason != ReasonPurpose || r.Purpose != PurposeFetch {
		t.Fatalf("refusal = %+v", r)
	}
}

// TestSlowClientDoesNotBlockOthers holds a connection that never speaks
// while another peer handshakes and is accepted; then the silent one is cut
// off at the handshake deadline.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	secret := newSecret(t)
	s := startServer(t, secret, func(c *ListenerConfig) { c.HandshakeTimeout = time.Hour })
	slow, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("SLNK")); err != nil { // a partial hello, then silence
		t.Fatal(err)
	}
	conn, _, err := Dial(dialCtx(t), s.addr(), secret, 3, PurposeRaft)
	if err != nil {
		t.Fatalf("Dial while a slow client is pending: %v", err)
	}
	defer conn.Close()
	if a := s.accept(t); a.PeerID != 3 {
		t.Fatalf("accepted peer %d, want 3", a.PeerID)
	}
}

func TestSlowClientTimesOut(t *testing.T) {
	s := startServer(t, newSecret(t), func(c *ListenerConfig) { c.HandshakeTimeout = 100 * time.Millisecond })
	slow, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("SLNK\x01R")); err != nil {
		t.Fatal(err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := slow.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("slow client read = %v, want EOF (server hung up)", err)
	}
	r := s.nextRefusal(t)
	if r.Reason != ReasonTimeout {
		t.Fatalf("refusal = %+v, want timeout", r)
	}
	if !strings.Contains(s.logs.String(), "reason=timeout") {
		t.Fatalf("server log lacks the timeout:\n%s", s.logs.String())
	}
}

func TestPendingHandshakesBounded(t *testing.T) {
	secret := newSecret(t)
	s := startServer(t, secret, func(c *ListenerConfig) {
		c.MaxPendingHandshakes = 2
		c.HandshakeTimeout = time.Hour
	})
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// The third connection finds both slots taken once the first two have
	// been picked up; the listener closes it at once.
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("third connection read = %v, want EOF", err)
	}
	if r := s.nextRefusal(t); r.Reason != ReasonOverload {
		t.Fatalf("refusal = %+v, want overload", r)
	}
	if st := s.l.Stats(); st.Pending != 2 || st.Refused[ReasonOverload] != 1 {
		t.Fatalf("Stats = %+v, want 2 pending, 1 overload", st)
	}
	// Freeing a slot lets a real peer in again.
	idle[0].Close()
	if r := s.nextRefusal(t); r.Reason != ReasonProtocol {
		t.Fatalf("closed idle conn refusal = %+v, want protocol", r)
	}
	conn, _, err := Dial(dialCtx(t), s.addr(), secret, 4, PurposeRaft)
	if err != nil {
		t.Fatalf("Dial after a slot freed: %v", err)
	}
	defer conn.Close()
	if a := s.accept(t); a.PeerID != 4 {
		t.Fatalf("accepted %d, want 4", a.PeerID)
	}
}

func TestDialContextCancel(t *testing.T) {
	// A TCP server that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = Dial(ctx, ln.Addr().String(), newSecret(t), 2, PurposeRaft)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial to a mute server = %v, want a deadline error", err)
	}
}

func TestCloseStopsAcceptAndPending(t *testing.T) {
	secret := newSecret(t)
	s := startServer(t, secret, func(c *ListenerConfig) { c.HandshakeTimeout = time.Hour })
	idle, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	acceptErr := make(chan error, 1)
	go func() {
		_, err := s.l.Accept()
		acceptErr <- err
	}()
	if err := s.l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("pending conn after Close: read = %v, want closed", err)
	}
	if _, _, err := Dial(dialCtx(t), s.addr(), secret, 2, PurposeRaft); err == nil {
		t.Fatal("Dial after Close succeeded")
	}
}

func TestListenerConfigValidate(t *testing.T) {
	cfg := DefaultListenerConfig()
	if err := cfg.Validate(); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("Validate without secret = %v, want ErrWeakSecret", err)
	}
	cfg.Secret = newSecret(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.MaxPendingHandshakes = -1
	if err := cfg.Validate(); err == nil {
		t.Fatal("Validate accepted negative MaxPendingHandshakes")
	}
}

func BenchmarkHandshake(b *testing.B) {
	secret := newSecret(b)
	cfg := DefaultListenerConfig()
	cfg.Secret = secret
	cfg.SelfID = 1
	l, err := Listen(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			a.Conn.Close()
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, _, err := Dial(ctx, l.Addr().String(), secret, 2, PurposeRaft)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func BenchmarkTranscriptMAC(b *testing.B) {
	secret := newSecret(b)
	var h [helloSize]byte
	var c [challengeSz]byte
	b.SetBytes(int64(len(h) + len(c)))
	b.ReportAllocs()
	for b.Loop() {
		_ = transcriptMAC(secret, labelClient, h[:], c[:])
	}
}
