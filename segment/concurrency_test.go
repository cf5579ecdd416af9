package segment

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-io/sluice/internal/batchtest"
)

// One appender, several readers, retention and truncation all running:
// readers must only ever see whole, CRC-valid, contiguous batches starting
// at the batch that holds the requested offset, and a pinned range must
// stay fully readable until released.
func TestConcurrentAppendReadRetainTruncate(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 200
	cfg.RetentionBytes = 32 << 10
	cfg.RetentionAge = -1
	cfg.FS = noSyncFS{OSFS()} // truncation and retention sync; that is not under test
	l := openLog(t, t.TempDir(), cfg)

	const appends = 1000
	var stop atomic.Bool
	tick := make(chan struct{}, 1) // the appender paces maintenance
	var truncations atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		stop.Store(true)
	}

	wg.Add(1)
	go func() { // the appender
		defer wg.Done()
		defer stop.Store(true)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < appends && !stop.Load(); i++ {
			var bs [][]byte
			for n := 1 + rng.IntN(3); n > 0; n-- {
				bs = append(bs, batchtest.Build(batchtest.Filler(1+rng.IntN(4), rng.IntN(300))))
			}
			if _, err := l.Append(batchtest.Concat(bs...), 1); err != nil {
				fail(err)
				return
			}
			if i%20 == 0 {
				select {
				case tick <- struct{}{}:
				default:
				}
			}
		}
		close(tick)
	}()
	wg.Add(1)
	go func() { // retention and truncation
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for range tick {
			if _, err := l.EnforceRetention(); err != nil {
				fail(err)
				return
			}
			leo := l.LogEndOffset()
			if back := int64(rng.IntN(20)); leo-back > l.LogStartOffset() {
				if err := l.TruncateTo(leo - back); err != nil {
					fail(err)
					return
				}
				truncations.Add(1)
			}
		}
	}()
	var reads atomic.Int64
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(seed uint64) { // readers
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 5))
			for !stop.Load() {
				start, end := l.LogStartOffset(), l.LogEndOffset()
				off := start + rng.Int64N(end-start+1)
				v, err := l.Read(off, 1+rng.IntN(16<<10), end)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention or truncation moved the bounds
				}
				if err != nil {
					fail(err)
					return
				}
				if err := checkView(v, off); err != nil {
					fail(err)
				}
				v.Release()
				reads.Add(1)
			}
		}(uint64(r))
	}
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if reads.Load() == 0 {
		t.Fatal("readers never read")
	}
	if truncations.Load() == 0 {
		t.Fatal("no truncation ran")
	}
	t.Logf("%d reads, %d truncations, final log [%d, %d) in %d segments", reads.Load(), truncations.Load(), l.LogStartOffset(), l.LogEndOffset(), l.NumSegments())
}

// checkView reads every range in full and checks the batches.
func checkView(v *View, off int64) error {
	var buf []byte
	for _, r := range v.Ranges {
		b := make([]byte, r.Len)
		n, err := r.File.ReadAt(b, r.Pos)
		if int64(n) != r.Len {
			return errors.Join(errors.New("pinned range shrank under a view"), err)
		}
		buf = append(buf, b...)
	}
	if len(buf) == 0 {
		return nil
	}
	hs, err := ValidateBatches(buf, 0)
	if err != nil {
		return err
	}
	if hs[0].BaseOffset > off || hs[0].LastOffset() < off {
		return errors.New("view does not start at the batch holding the offset")
	}
	for i := 1; i < len(hs); i++ {
		if hs[i].BaseOffset != hs[i-1].NextOffset() {
			return errors.New("view batches not contiguous")
		}
	}
	return nil
}
