package fetch

import (
	"io"
	mrand "math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/sluice-io/sluice/wire"
)

// TestWritersRandomPieces sends many random mixes of byte pieces and file
// ranges (empty ones, adjacent ones, ranges ending at EOF) back to back on
// one connection per writer and checks every byte.
func TestWritersRandomPieces(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, 1))
	dir := t.TempDir()
	type file struct {
		f    *os.File
		data []byte
	}
	var files []file
	for i := range 3 {
		f, d := testFile(t, dir, 1+r.IntN(2<<20), uint64(100+i))
		files = append(files, file{f, d})
	}
	randomSet := func() *pieceSet {
		ps := &pieceSet{}
		for range r.IntN(40) {
			if r.IntN(2) == 0 {
				b := make([]byte, r.IntN(300))
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				ps.bytes(b)
				continue
			}
			fl := files[r.IntN(len(files))]
			pos := r.Int64N(int64(len(fl.data)) + 1)
			n := r.Int64N(int64(len(fl.data)) - pos + 1)
			if r.IntN(4) == 0 {
				n = int64(len(fl.data)) - pos // to EOF
			}
			ps.rng(fl.f, fl.data, pos, n)
		}
		return ps
	}
	// Each entry dials its own pair and returns the write function and the
	// reading side.
	writers := []struct {
		name string
		dial func(t *testing.T) (func([]wire.Piece) (int64, error), io.Reader)
	}{
		{"sendfile", func(t *testing.T) (func([]wire.Piece) (int64, error), io.Reader) {
			send, recv := tcpPair(t, 8<<10)
			return func(p []wire.Piece) (int64, error) { return WriteSendfile(send, p) }, recv
		}},
		{"copy-tls", func(t *testing.T) (func([]wire.Piece) (int64, error), io.Reader) {
			send, recv := tlsPair(t)
			return func(p []wire.Piece) (int64, error) { return defaultCopier.WriteBuffered(send, p) }, recv
		}},
	}
	for _, wr := range writers {
		t.Run(wr.name, func(t *testing.T) {
			write, rd := wr.dial(t)
			for i := range 30 {
				ps := randomSet()
				got := readN(rd, len(ps.want), 0, nil)
				n, err := write(ps.pieces)
				if err != nil || n != int64(len(ps.want)) {
					t.Fatalf("seed %d round %d: write = %d, %v; want %d, nil", seed, i, n, err, len(ps.want))
				}
				res := waitRead(t, got)
				if res.err != nil {
					t.Fatalf("seed %d round %d: read: %v", seed, i, res.err)
				}
				checkBytes(t, res.data, ps.want)
			}
		})
	}
}
