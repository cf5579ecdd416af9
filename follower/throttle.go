package follower

import (
	"sync"
	"time"
)

// throttle is the replication throttle (KIP-73 style, follower side): a token bucket shared by all
// fetchers of a broker, refilled at rate bytes per second up to one second's worth. A fetcher waits
// while the bucket is empty, asks for at most what it holds, and pays for what it received afterwards
// (the first batch of a response may exceed the ask, KIP-74, so the bucket may go into debt, which the
// next request waits out). Safe for concurrent use; a nil throttle never waits.
type throttle struct {
	rate float64 // bytes per second

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newThrottle(bytesPerSec int64, now time.Time) *throttle {
	if bytesPerSec <= 0 {
		return nil
	}
	return &throttle{rate: float64(bytesPerSec), tokens: float64(bytesPerSec), last: now}
}

func (t *throttle) refillLocked(now time.Time) {
	if d := now.Sub(t.last); d > 0 {
		t.tokens = min(t.rate, t.tokens+d.Seconds()*t.rate)
		t.last = now
	}
}

// allowance returns how many bytes a request may ask for now (at most want), or the time to wait
// before asking again when the bucket is empty or in debt.
func (t *throttle) allowance(now time.Time, want int32) (int32, time.Duration) {
	if t == nil {
		return want, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refillLocked(now)
	if t.tokens < 1 {
		return 0, time.Duration((1 - t.tokens) / t.rate * float64(time.Second))
	}
	return int32(min(float64(want), t.tokens)), 0
}

// spend charges n received bytes.
func (t *throttle) spend(now time.Time, n int) {
	if t == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refillLocked(now)
	t.tokens -= float64(n)
}
