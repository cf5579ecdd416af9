package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/certs"
)

// TestMain lets this test binary serve as the raw peer process: started
// with peerEnv set and the arguments `bench raw-peer ...`, it runs
// ServeRawPeer instead of the tests, exactly as `sluice bench raw-peer`.
func TestMain(m *testing.M) {
	if os.Getenv(peerEnv) == "1" && len(os.Args) > 2 && os.Args[1] == "bench" && os.Args[2] == "raw-peer" {
		if err := ServeRawPeer(context.Background(), os.Args[3:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const peerEnv = "SLUICE_BENCH_TEST_PEER"

// testPeer starts this test binary as a raw peer.
func testPeer(t *testing.T, ctx context.Context, spec rawPeerSpec) (*rawPeer, error) {
	t.Helper()
	t.Setenv(peerEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec.Binary = exe
	spec.LogPath = filepath.Join(t.TempDir(), "peer.log")
	return startRawPeer(ctx, spec)
}

// rawFiles writes files of the given sizes and returns their paths.
func rawFiles(t *testing.T, sizes ...int) ([]string, int64) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	var total int64
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i + j)
		}
		p := filepath.Join(dir, filepath.Base(t.Name())+string(rune('a'+i))+".log")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		total += int64(n)
	}
	return paths, total
}

func testTLS(t *testing.T) (certs.Files, *tls.Config) {
	t.Helper()
	f, err := certs.WriteDev(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return f, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func TestRawFetchPeers(t *testing.T) {
	files, total := rawFiles(t, 300<<10, 1<<20+17, 5)
	f, cli := testTLS(t)
	for _, mode := range []string{peerSendfile, peerCopy, peerTLS} {
		for _, conns := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/conns=%d", mode, conns), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				p, err := testPeer(t, ctx, rawPeerSpec{Mode: mode, Files: files, Chunk: 64 << 10, ReadBuf: 256 << 10,
					CertFile: f.ServerCert, KeyFile: f.ServerKey, TLS: cli, Conns: conns})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				prog := newProgress(nil)
				// minDuration 0: exactly one pass.
				n, el, err := p.fetchRound(ctx, 0, 5, prog)
				if err != nil {
					t.Fatalf("one pass: %v", err)
				}
				want := int64(conns) * total
				if n != want || el <= 0 || prog.bytes.Load() != want {
					t.Fatalf("one pass moved %d bytes in %v (progress %d), want %d", n, el, prog.bytes.Load(), want)
				}
				// The same connections again, bounded by the pass count.
				n, _, err = p.fetchRound(ctx, time.Hour, 3, prog)
				if err != nil || n != 3*want {
					t.Fatalf("three passes: %d bytes, %v; want %d", n, err, 3*want)
				}
				if c, err := p.CPU(); err != nil || c < 0 {
					t.Fatalf("peer CPU = %v, %v", c, err)
				}
				if err := p.Alive(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestRawPeerBadArgs(t *testing.T) {
	ctx := context.Background()
	empty, _ := rawFiles(t, 0)
	for _, tc := range []struct {
		args  []string
		usage bool // wraps ErrPeerUsage
	}{
		{[]string{"--mode", "nope"}, true},
		{[]string{"--mode", "sendfile"}, true},
		{[]string{"--mode", "sink"}, true},
		{[]string{"--mode", "copy", "--file", "x", "--chunk", "0"}, true},
		{[]string{"--mode", "copy", "--file", "x", "--conns", "0"}, true},
		{[]string{"--mode", "sink", "--sink-file", "x", "--conns", "2"}, true},
		{[]string{"--bogus"}, true},
		{[]string{"--mode", "tls", "--file", "x", "--cert", "/nonexistent", "--key", "/nonexistent"}, false},
		{[]string{"--mode", "copy", "--file", "/nonexistent"}, false},
		{[]string{"--mode", "copy", "--file", empty[0]}, false},
	} {
		err := ServeRawPeer(ctx, tc.args, io.Discard)
		if err == nil || errors.Is(err, ErrPeerUsage) != tc.usage {
			t.Errorf("ServeRawPeer(%q) = %v; want an error (usage: %v)", tc.args, err, tc.usage)
		}
	}
	// A peer whose source file is missing exits, and the client says why.
	_, err := testPeer(t, ctx, rawPeerSpec{Mode: peerCopy, Files: []string{filepath.Join(t.TempDir(), "nope")}, Chunk: 1 << 16})
	if err == nil {
		t.Fatal("a raw peer over a missing file started")
	}
}

// TestRawSourceShrinks checks that a source file truncated under the sender
// fails the round instead of hanging the receiver.
func TestRawSourceShrinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []string{peerSendfile, peerCopy} {
		files, _ := rawFiles(t, 1<<20)
		p, err := testPeer(t, ctx, rawPeerSpec{Mode: mode, Files: files, Chunk: 1 << 16, ReadBuf: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(files[0], 1000); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.fetchRound(ctx, 0, 1, newProgress(nil)); err == nil {
			t.Errorf("mode %s: round over a shrunk file succeeded", mode)
		}
		p.Close()
	}
	if ctx.Err() != nil {
		t.Fatal("rounds hung until the test deadline")
	}
}

func TestRawSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "sink.bin")
	p, err := testPeer(t, ctx, rawPeerSpec{Mode: peerSink, SinkFile: path, Chunk: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	chunk := make([]byte, 1<<20)
	prog := newProgress(nil)
	for _, size := range []int64{3<<20 + 5, 1 << 20} {
		el, err := p.sinkRound(ctx, size, chunk, prog)
		if err != nil || el <= 0 {
			t.Fatalf("sinkRound(%d) = %v, %v", size, el, err)
		}
		// The acknowledgement comes after the bytes are in the file.
		if st, err := os.Stat(path); err != nil || st.Size() != size {
			t.Fatalf("sink file after a %d-byte round: %v, %v", size, st, err)
		}
	}
	if got := prog.bytes.Load(); got != 4<<20+5 {
		t.Fatalf("progress counted %d", got)
	}
}

func TestRawDiskWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	const size = 3<<20 + 5
	prog := newProgress(nil)
	w, s, err := rawDiskWrite(ctx, filepath.Join(dir, "w.bin"), size, 1<<20, prog)
	if err != nil || w <= 0 || s < w {
		t.Fatalf("rawDiskWrite = %v, %v, %v", w, s, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "w.bin")); err != nil || st.Size() != size {
		t.Fatalf("written file: %v, %v", st, err)
	}
	if got := prog.bytes.Load(); got != size {
		t.Fatalf("progress counted %d, want %d", got, size)
	}
}

func TestRawCanceled(t *testing.T) {
	files, _ := rawFiles(t, 1<<20)
	p, err := testPeer(t, context.Background(), rawPeerSpec{Mode: peerCopy, Files: files, Chunk: 1 << 16, ReadBuf: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The round would copy 100 GiB; the context ends it mid-way.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, _, err := p.fetchRound(ctx, time.Hour, 100<<10, newProgress(nil)); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a round ended by its context reported success")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the round ignored its context")
	}
}
