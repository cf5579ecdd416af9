package fetch

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSignalWaitNotify(t *testing.T) {
	var s Signal
	s.Notify() // nobody waits: a no-op
	a := s.Wait()
	b := s.Wait()
	if a != b {
		t.Fatal("two Waits before a Notify returned different channels")
	}
	if isClosed(a) {
		t.Fatal("Wait channel closed before Notify")
	}
	s.Notify()
	if !isClosed(a) {
		t.Fatal("Wait channel still open after Notify")
	}
	c := s.Wait()
	if c == a || isClosed(c) {
		t.Fatal("Wait after Notify did not return a fresh open channel")
	}
	if n, ch := s.waiting(); n != 0 || !ch {
		t.Fatalf("waiting() = %d, %v; want 0, true", n, ch)
	}
	s.Notify()
	if n, ch := s.waiting(); n != 0 || ch || s.armed.Load() {
		t.Fatalf("after Notify: waiting() = %d, %v, armed %v; want 0, false, false", n, ch, s.armed.Load())
	}
}

func TestSignalNotifyIdleAllocs(t *testing.T) {
	var s Signal
	if allocs := testing.AllocsPerRun(1000, s.Notify); allocs != 0 {
		t.Fatalf("idle Notify allocates %.1f, want 0", allocs)
	}
}

func TestWaiterManySignals(t *testing.T) {
	sigs := make([]Signal, 5000)
	w := NewWaiter()
	for round := 0; round < 3; round++ {
		for i := range sigs {
			w.Add(&sigs[i])
		}
		if isClosed(w.C()) {
			t.Fatal("waiter woken before any Notify")
		}
		hit := (round*1777 + 537) % len(sigs)
		sigs[hit].Notify()
		select {
		case <-w.C():
		default:
			t.Fatalf("round %d: Notify on signal %d did not wake the waiter", round, hit)
		}
		// The notified signal dropped the waiter; the others keep it until Stop.
		if n, _ := sigs[hit].waiting(); n != 0 {
			t.Fatalf("notified signal still has %d waiters", n)
		}
		if n, _ := sigs[(hit+1)%len(sigs)].waiting(); n != 1 {
			t.Fatalf("untouched signal has %d waiters before Stop, want 1", n)
		}
		w.Stop()
		for i := range sigs {
			if n, ch := sigs[i].waiting(); n != 0 || ch || sigs[i].armed.Load() {
				t.Fatalf("round %d: signal %d after Stop: waiters %d, chan %v, armed %v", round, i, n, ch, sigs[i].armed.Load())
			}
		}
		// Nothing reaches a stopped waiter.
		sigs[(hit+2)%len(sigs)].Notify()
		if isClosed(w.C()) {
			t.Fatal("a stopped waiter was woken")
		}
	}
}

func TestWaiterStopDiscardsPending(t *testing.T) {
	var a, b Signal
	w := NewWaiter()
	w.Add(&a)
	w.Add(&b)
	a.Notify()
	b.Notify() // second wake-up is coalesced into the pending one
	w.Stop()
	select {
	case <-w.C():
		t.Fatal("pending wake-up survived Stop")
	default:
	}
	// Reuse on one signal only.
	w.Add(&b)
	a.Notify()
	if isClosed(w.C()) {
		t.Fatal("woken by a signal it is no longer registered with")
	}
	b.Notify()
	if !isClosed(w.C()) {
		t.Fatal("reused waiter not woken")
	}
	w.Stop()
}

func TestWaiterRearm(t *testing.T) {
	sigs := make([]Signal, 1000)
	w := NewWaiter()
	for i := range sigs {
		w.Add(&sigs[i])
	}
	for round, hit := range []int{7, 7, 999, 0, 7} {
		sigs[hit].Notify()
		sigs[hit].Notify() // nobody left to wake on this signal: no-op
		select {
		case <-w.C():
		default:
			t.Fatalf("round %d: Notify on %d did not wake the waiter", round, hit)
		}
		if n, _ := sigs[hit].waiting(); n != 0 {
			t.Fatalf("round %d: fired signal still lists %d waiters before Rearm", round, n)
		}
		w.Rearm()
		for i := range sigs {
			if n, _ := sigs[i].waiting(); n != 1 {
				t.Fatalf("round %d: signal %d lists %d waiters after Rearm, want 1", round, i, n)
			}
		}
		if isClosed(w.C()) {
			t.Fatalf("round %d: token left after one Notify was consumed", round)
		}
	}
	// Two signals fire before the waiter looks: one token, both rearmed.
	sigs[1].Notify()
	sigs[2].Notify()
	<-w.C()
	w.Rearm()
	for _, i := range []int{1, 2} {
		if n, _ := sigs[i].waiting(); n != 1 {
			t.Fatalf("signal %d lists %d waiters after Rearm, want 1", i, n)
		}
	}
	w.Stop()
	for i := range sigs {
		if n, _ := sigs[i].waiting(); n != 0 || sigs[i].armed.Load() {
			t.Fatalf("signal %d after Stop: %d waiters, armed %v", i, n, sigs[i].armed.Load())
		}
	}
	if len(w.sigs) != 0 || len(w.fired) != 0 {
		t.Fatalf("waiter keeps %d signals and %d fired after Stop", len(w.sigs), len(w.fired))
	}
}

func TestSignalWaitAndWaiterTogether(t *testing.T) {
	var s Signal
	w := NewWaiter()
	w.Add(&s)
	ch := s.Wait()
	w.Stop()
	if !s.armed.Load() {
		t.Fatal("Stop disarmed a signal with an outstanding Wait channel")
	}
	s.Notify()
	if !isClosed(ch) {
		t.Fatal("Wait channel not closed")
	}
}

// TestSignalNoLostWakeups runs producers that advance per-partition counters
// and notify, against consumers that wait (register, check, select) for each
// partition to reach a target. A lost wake-up leaves a consumer stuck, which
// the deadline turns into a failure.
func TestSignalNoLostWakeups(t *testing.T) {
	const (
		partitions = 16
		producers  = 4
		perProd    = 2000
		consumers  = 8
	)
	var (
		hw   [partitions]atomic.Int64
		sigs [partitions]Signal
	)
	target := int64(producers * perProd / partitions)
	var wg, ready sync.WaitGroup
	ready.Add(consumers) // producers start once every consumer is waiting
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Wait()
			for i := 0; i < perProd; i++ {
				k := (p + i) % partitions
				hw[k].Add(1)
				sigs[k].Notify()
			}
		}()
	}
	errs := make(chan string, consumers)
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.NewTimer(30 * time.Second)
			defer deadline.Stop()
			if c%3 != 2 { // multi-signal Waiter; c%3 == 1 rearms instead of re-adding
				w := NewWaiter()
				for k := range sigs {
					w.Add(&sigs[k])
				}
				ready.Done()
				for {
					done := true
					for k := range hw {
						done = done && hw[k].Load() >= target
					}
					if done {
						w.Stop()
						return
					}
					select {
					case <-w.C():
					case <-deadline.C:
						errs <- "waiter consumer stuck: lost wake-up"
						return
					}
					if c%3 == 1 {
						w.Rearm()
						continue
					}
					w.Stop()
					for k := range sigs {
						w.Add(&sigs[k])
					}
				}
			}
			ready.Done()
			for k := range sigs { // one partition at a time with Wait
				for {
					ch := sigs[k].Wait()
					if hw[k].Load() >= target {
						break
					}
					select {
					case <-ch:
					case <-deadline.C:
						errs <- "Wait consumer stuck: lost wake-up"
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
