package fetch

import (
	"sync"
	"sync/atomic"
)

// Signal is a broadcast wake-up for long-polling fetches: every party waiting
// at the time of Notify is woken, later waiters wait for the next Notify.
// Typically each partition has one, notified after an append advances the
// high watermark (or, for followers, the log end offset).
//
// A Signal carries no condition, only "something may have changed": a waiter
// must get its channel (Wait) or register (Waiter.Add) BEFORE its last check
// of the condition, and re-check after every wake-up. With that order no
// wake-up is lost: either the check sees the new state, or the Notify sees
// the waiter.
//
// Notify costs one atomic load when nobody waits. The zero value is ready to
// use; a Signal must not be copied after first use. Safe for concurrent use.
type Signal struct {
	armed   atomic.Bool // ch != nil || len(waiters) > 0; written under mu
	mu      sync.Mutex
	ch      chan struct{}        // closed by the next Notify; nil when unused
	waiters map[*Waiter]struct{} // registered multi-signal waiters
}

// Wait returns a channel that is closed by the next Notify. Every caller
// between two Notify calls gets the same channel.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	if s.ch == nil {
		s.ch = make(chan struct{})
		s.armed.Store(true)
	}
	ch := s.ch
	s.mu.Unlock()
	return ch
}

// Notify wakes everyone waiting: it closes the channel handed out by Wait
// and wakes every registered Waiter, which are then unregistered.
func (s *Signal) Notify() {
	if !s.armed.Load() {
		return
	}
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	for w := range s.waiters {
		w.wake(s) // under mu, so no wake-up reaches a Waiter after its Stop
	}
	clear(s.waiters)
	s.armed.Store(false)
	s.mu.Unlock()
}

// waiting reports the number of registered Waiters and whether a Wait
// channel is outstanding (tests).
func (s *Signal) waiting() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters), s.ch != nil
}

// Waiter waits for the first Notify on any of many Signals without a
// goroutine or a channel per Signal: it registers itself in each Signal and
// owns a single channel that every Notify fills (one token; wake-ups
// coalesce). A Notify unregisters the Waiter from that Signal only and
// records which Signal fired, so after a wake-up Rearm re-registers just the
// Signals that fired: a fetch over thousands of partitions pays O(partitions)
// to arm and to Stop, and O(1) per wake-up in between, however hot one of
// its partitions is. select stays a three-way select (waiter, timer,
// context).
//
//	for _, p := range partitions { w.Add(&p.signal) } // 1. register
//	for !enough() {                                   // 2. check
//		select {
//		case <-w.C(): w.Rearm()                       // 3. re-register what fired, re-check
//		case <-timer.C: ...
//		case <-ctx.Done(): ...
//		}
//	}
//	w.Stop()                                          // 4. unregister everywhere
//
// A Waiter belongs to one goroutine at a time (Add, Rearm, Stop and C are
// not safe for concurrent use with each other); Notify from other goroutines
// is. After Stop it can be reused, and no wake-up from an earlier round leaks
// into the next. A wake-up means only that some partition changed, not that
// the fetch is satisfied: re-check. Create one with NewWaiter.
type Waiter struct {
	c    chan struct{} // capacity 1: a pending wake-up
	sigs []*Signal     // every Signal added this round (owner only)

	mu    sync.Mutex // guards fired; taken inside a Signal's mu, never around one
	fired []*Signal  // Signals whose Notify dropped this waiter since the last Rearm
	spare []*Signal  // recycled backing array for fired (owner only)
}

// NewWaiter returns an unregistered Waiter.
func NewWaiter() *Waiter {
	return &Waiter{c: make(chan struct{}, 1)}
}

// Add registers w with s: the next Notify on s wakes w.
func (w *Waiter) Add(s *Signal) {
	s.register(w)
	w.sigs = append(w.sigs, s)
}

func (s *Signal) register(w *Waiter) {
	s.mu.Lock()
	if s.waiters == nil {
		s.waiters = make(map[*Waiter]struct{})
	}
	s.waiters[w] = struct{}{}
	s.armed.Store(true)
	s.mu.Unlock()
}

// C returns the channel that receives a value when any registered Signal is
// notified. It is the same channel for the life of w.
func (w *Waiter) C() <-chan struct{} { return w.c }

// Rearm re-registers w with every Signal that has woken it since it was
// added or last rearmed (a Notify unregisters the waiter it wakes). Call it
// after receiving from C and before re-checking the condition.
func (w *Waiter) Rearm() {
	w.mu.Lock()
	fired := w.fired
	w.fired = w.spare[:0]
	w.mu.Unlock()
	for i, s := range fired {
		s.register(w)
		fired[i] = nil
	}
	w.spare = fired[:0]
}

// Stop unregisters w from every Signal it was added to and discards a
// pending wake-up, leaving w ready for reuse. No wake-up from this round is
// delivered after Stop returns.
func (w *Waiter) Stop() {
	for i, s := range w.sigs {
		s.mu.Lock()
		delete(s.waiters, w)
		if len(s.waiters) == 0 && s.ch == nil {
			s.armed.Store(false)
		}
		s.mu.Unlock()
		w.sigs[i] = nil
	}
	w.sigs = w.sigs[:0]
	w.mu.Lock()
	clear(w.fired)
	w.fired = w.fired[:0]
	w.mu.Unlock()
	select {
	case <-w.c:
	default:
	}
}

// wake is called by s.Notify with s.mu held.
func (w *Waiter) wake(s *Signal) {
	w.mu.Lock()
	w.fired = append(w.fired, s)
	w.mu.Unlock()
	select {
	case w.c <- struct{}{}:
	default: // already pending
	}
}
