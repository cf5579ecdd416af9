package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress counts the bytes of the current phase and prints them once a
// second. add is safe for concurrent use; begin and run are called by the
// goroutine that owns the benchmark.
type progress struct {
	w     io.Writer // nil: count only
	bytes atomic.Int64

	mu    sync.Mutex
	phase string
	start time.Time
	total int64 // expected bytes, 0 = unknown
	wait  bool  // a phase that moves no bytes: print only the elapsed time
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// begin starts a new phase.
func (p *progress) begin(phase string, total int64) {
	p.mu.Lock()
	p.phase, p.start, p.total, p.wait = phase, time.Now(), total, false
	p.mu.Unlock()
	p.bytes.Store(0)
}

// beginWait starts a phase that waits for an event rather than moving
// bytes (a failover, a cluster settling): its lines show the elapsed time.
func (p *progress) beginWait(phase string) {
	p.begin(phase, 0)
	p.mu.Lock()
	p.wait = true
	p.mu.Unlock()
}

func (p *progress) add(n int64) { p.bytes.Add(n) }

// line renders the current phase's progress.
func (p *progress) line() string {
	p.mu.Lock()
	phase, start, total, wait := p.phase, p.start, p.total, p.wait
	p.mu.Unlock()
	if phase == "" {
		return ""
	}
	if wait {
		return fmt.Sprintf("bench: %-28s  waiting %5.1fs", phase, time.Since(start).Seconds())
	}
	b := p.bytes.Load()
	secs := time.Since(start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(b) / 1e6 / secs
	}
	s := fmt.Sprintf("bench: %-28s %9.1f MB  %8.1f MB/s  %5.1fs", phase, float64(b)/1e6, rate, secs)
	if total > 0 {
		s += fmt.Sprintf("  (%.0f%% of %.0f MB)", 100*float64(b)/float64(total), float64(total)/1e6)
	}
	return s
}

// run prints a progress line every interval until ctx ends.
func (p *progress) run(ctx context.Context, interval time.Duration) {
	if p.w == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if l := p.line(); l != "" {
				fmt.Fprintln(p.w, l)
			}
		}
	}
}

// note prints a one-off message (phase boundaries).
func (p *progress) note(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
	}
}
