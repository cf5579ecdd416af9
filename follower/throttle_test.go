package follower

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	if newThrottle(0, t0) != nil {
		t.Fatal("a zero rate must mean no throttle")
	}
	var off *throttle
	if n, wait := off.allowance(t0, 100); n != 100 || wait != 0 {
		t.Fatalf("nil throttle: %d, %v", n, wait)
	}
	th := newThrottle(1000, t0) // 1,000 bytes/s, a full second's worth to start with
	if n, wait := th.allowance(t0, 5000); n != 1000 || wait != 0 {
		t.Fatalf("full bucket: %d, %v; want 1000, 0", n, wait)
	}
	th.spend(t0, 1500) // a first batch larger than the ask: 500 bytes of debt
	n, wait := th.allowance(t0, 5000)
	if n != 0 || wait != 501*time.Millisecond {
		t.Fatalf("in debt: %d, %v; want 0, 501ms", n, wait)
	}
	if n, _ := th.allowance(t0.Add(wait), 5000); n != 1 {
		t.Fatalf("after the wait: %d, want 1", n)
	}
	if n, _ := th.allowance(t0.Add(10*time.Second), 5000); n != 1000 {
		t.Fatalf("refill is capped at one second: %d", n)
	}
}
