package segment

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An index file that disagrees with its log is rebuilt, never trusted.
func TestIndexDisagreementRebuilds(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, idx []string)
	}{
		{"flipped entry byte", func(t *testing.T, dir string, idx []string) {
			b := readT(t, idx[1])
			b[5] ^= 0x10
			writeT(t, idx[1], b)
		}},
		{"index of another segment", func(t *testing.T, dir string, idx []string) {
			writeT(t, idx[1], readT(t, idx[2]))
		}},
		{"missing time index", func(t *testing.T, dir string, idx []string) {
			if err := os.Remove(strings.TrimSuffix(idx[1], indexSuffix) + timeIndexSuffix); err != nil {
				t.Fatal(err)
			}
		}},
		{"log grew after the index", func(t *testing.T, dir string, idx []string) {
			// Garbage after the last batch: the index trailer's size no
			// longer matches, recovery cuts the garbage.
			p := strings.TrimSuffix(idx[len(idx)-1], indexSuffix) + logSuffix
			writeT(t, p, append(readT(t, p), 1, 2, 3))
		}},
		{"empty index file", func(t *testing.T, dir string, idx []string) {
			writeT(t, idx[0], nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.SegmentBytes = 1024
			cfg.IndexIntervalBytes = 100
			l := openLog(t, dir, cfg)
			for i := 0; i < 60; i++ {
				mustAppend(t, l, batch("idx", 1+i%3), 0)
			}
			leo := l.LogEndOffset()
			_, want := readAll(t, l, 0, leo, 1<<30)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			idx, _ := filepath.Glob(filepath.Join(dir, "*"+indexSuffix))
			if len(idx) < 3 {
				t.Fatalf("only %d index files", len(idx))
			}
			tc.damage(t, dir, idx)

			logs := &logCapture{}
			cfg.Logger = logs.logger()
			l2 := openLog(t, dir, cfg)
			if logs.count("not trusted") == 0 {
				t.Fatalf("damaged index trusted:\n%s", logs.String())
			}
			if l2.LogEndOffset() != leo {
				t.Fatalf("LEO %d, want %d", l2.LogEndOffset(), leo)
			}
			_, got := readAll(t, l2, 0, leo, 1<<30)
			if !bytes.Equal(got, want) {
				t.Fatal("content differs after rebuild")
			}
			for off := int64(0); off < leo; off++ {
				hs, _ := readAll(t, l2, off, leo, 1)
				if hs[0].BaseOffset > off || hs[0].LastOffset() < off {
					t.Fatalf("Read(%d) after rebuild = %+v", off, hs[0])
				}
			}
		})
	}
}

func readT(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeT(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
