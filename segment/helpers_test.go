package segment

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batchtest"
	"github.com/sluice-io/sluice/internal/testutil"
)

func testConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 1 << 20
	c.IndexIntervalBytes = 256
	return c
}

func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// batch builds a producer batch of n records with values "<tag>-<i>".
func batch(tag string, n int, opts ...batchtest.Option) []byte {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("%s-%d", tag, i)
	}
	return batchtest.Build(append([]batchtest.Option{batchtest.Values(vals...)}, opts...)...)
}

func mustAppend(t testing.TB, l *Log, b []byte, epoch int32) AppendInfo {
	t.Helper()
	info, err := l.Append(b, epoch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return info
}

// readAll reads [from, upper) through views and returns the batches'
// headers and bytes, checking each is whole and CRC-valid.
func readAll(t testing.TB, l *Log, from, upper int64, maxBytes int) ([]Header, []byte) {
	t.Helper()
	v, err := l.Read(from, maxBytes, upper)
	if err != nil {
		t.Fatalf("Read(%d, %d, %d): %v", from, maxBytes, upper, err)
	}
	defer v.Release()
	return viewBatches(t, v)
}

func viewBatches(t testing.TB, v *View) ([]Header, []byte) {
	t.Helper()
	var all []byte
	for _, r := range v.Ranges {
		buf := make([]byte, r.Len)
		if n, err := r.File.ReadAt(buf, r.Pos); int64(n) != r.Len {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", r.Pos, r.Len, n, err)
		}
		all = append(all, buf...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	hs, err := ValidateBatches(all, math.MaxInt32)
	if err != nil {
		t.Fatalf("view holds invalid batches: %v", err)
	}
	return hs, all
}

// fakeClock is a settable clock for roll and retention tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func batchtestTime(ms int64) time.Time { return time.UnixMilli(ms) }

// logCapture collects log output for assertions about what Open did.
type logCapture struct {
	testutil.Buffer
}

func (c *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *logCapture) count(sub string) int { return strings.Count(c.String(), sub) }
