package link

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestDecodeHello(t *testing.T) {
	good := hello{version: Version, purpose: PurposeRaft, nodeID: 7}
	copy(good.nonce[:], bytes.Repeat([]byte{0xab}, nonceSize))
	enc := good.encode()
	if h, err := decodeHello(enc[:]); err != nil || h != good {
		t.Fatalf("decodeHello(%x) = %+v, %v, want %+v", enc, h, err, good)
	}
	mut := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), enc[:]...)
		return f(b)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"short", enc[:helloSize-1], ErrProtocol},
		{"long", append(enc[:], 0), ErrProtocol},
		{"magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrProtocol},
		{"version", mut(func(b []byte) []byte { b[4] = 2; return b }), ErrVersion},
		{"reserved", mut(func(b []byte) []byte { b[7] = 1; return b }), ErrProtocol},
		{"http", []byte("GET / HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r"), ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeHello(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("decodeHello(%x) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func TestDecodeChallenge(t *testing.T) {
	good := challenge{version: Version, status: statusOK, nodeID: -3}
	copy(good.nonce[:], bytes.Repeat([]byte{1}, nonceSize))
	copy(good.mac[:], bytes.Repeat([]byte{2}, macSize))
	enc := good.encode()
	if c, err := decodeChallenge(enc[:]); err != nil || c != good {
		t.Fatalf("decodeChallenge(%x) = %+v, %v, want %+v", enc, c, err, good)
	}
	bad := enc
	bad[5] = maxKnownStatus + 1
	if _, err := decodeChallenge(bad[:]); !errors.Is(err, ErrProtocol) {
		t.Fatalf("decodeChallenge(status %d) = %v, want ErrProtocol", bad[5], err)
	}
	if _, err := decodeChallenge(enc[:10]); !errors.Is(err, ErrProtocol) {
		t.Fatalf("decodeChallenge(short) = %v, want ErrProtocol", err)
	}
}

// pipeRW feeds a handshake side canned input and records its output.
type pipeRW struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (p *pipeRW) Read(b []byte) (int, error)  { return p.in.Read(b) }
func (p *pipeRW) Write(b []byte) (int, error) { return p.out.Write(b) }

// TestReplayRefused records a legitimate client's bytes and replays them
// against a fresh server challenge: the proof no longer matches.
func TestReplayRefused(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	cliConn, srvConn := duplexPipe()
	done := make(chan error, 1)
	go func() {
		_, _, err := serverHandshake(srvConn, secret, 1, func(Purpose) bool { return true })
		done <- err
	}()
	rec := &recorder{ReadWriter: cliConn}
	if _, err := clientHandshake(rec, secret, 2, PurposeRaft); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p := &pipeRW{in: bytes.NewReader(rec.sent.Bytes())}
	_, _, err := serverHandshake(p, secret, 1, func(Purpose) bool { return true })
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("replayed handshake = %v, want ErrAuth", err)
	}
}

type recorder struct {
	io.ReadWriter
	sent bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.sent.Write(b)
	return r.ReadWriter.Write(b)
}

type duplex struct {
	io.Reader
	io.Writer
}

func duplexPipe() (io.ReadWriter, io.ReadWriter) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return duplex{ar, aw}, duplex{br, bw}
}

func FuzzDecodeHello(f *testing.F) {
	h := hello{version: Version, purpose: PurposeFetch, nodeID: 3}
	enc := h.encode()
	f.Add(enc[:])
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add(bytes.Repeat([]byte{0xff}, helloSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err != nil {
			return
		}
		re := h.encode()
		if !bytes.Equal(re[:], b) {
			t.Fatalf("decodeHello(%x) round-trips to %x", b, re)
		}
	})
}

func FuzzDecodeChallenge(f *testing.F) {
	c := challenge{version: Version, nodeID: 9}
	enc := c.encode()
	f.Add(enc[:])
	f.Add(bytes.Repeat([]byte{0}, challengeSz))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeChallenge(b)
		if err != nil {
			return
		}
		re := c.encode()
		if !bytes.Equal(re[:], b) {
			t.Fatalf("decodeChallenge(%x) round-trips to %x", b, re)
		}
	})
}

// FuzzServerHandshake feeds arbitrary client bytes to the server side: it
// must never panic, never accept without the secret, and never write more
// than one challenge and one verdict.
func FuzzServerHandshake(f *testing.F) {
	h := hello{version: Version, purpose: PurposeRaft, nodeID: 5}
	enc := h.encode()
	f.Add(append(enc[:], make([]byte, proofSize)...))
	f.Add(append(enc[:], bytes.Repeat([]byte{7}, proofSize)...))
	f.Add([]byte("SLNK"))
	secret := bytes.Repeat([]byte("k3y!"), 16)
	f.Fuzz(func(t *testing.T, in []byte) {
		p := &pipeRW{in: bytes.NewReader(in)}
		_, _, err := serverHandshake(p, secret, 1, func(pp Purpose) bool { return pp == PurposeRaft })
		if err == nil {
			t.Fatalf("server accepted fuzz input %x", in)
		}
		if p.out.Len() > challengeSz+verdictSize {
			t.Fatalf("server wrote %d bytes", p.out.Len())
		}
	})
}
