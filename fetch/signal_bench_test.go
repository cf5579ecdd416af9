package fetch

import "testing"

// BenchmarkSignalNotifyIdle is the append path's cost when nobody waits.
func BenchmarkSignalNotifyIdle(b *testing.B) {
	var s Signal
	b.ReportAllocs()
	for b.Loop() {
		s.Notify()
	}
}

// BenchmarkSignalWaitNotify is one Wait channel made and closed per op.
func BenchmarkSignalWaitNotify(b *testing.B) {
	var s Signal
	b.ReportAllocs()
	for b.Loop() {
		ch := s.Wait()
		s.Notify()
		<-ch
	}
}

// BenchmarkWaiterArmStop1000 arms a Waiter on 1000 partitions and stops it: the
// fixed cost of a long-poll fetch over 1000 partitions.
func BenchmarkWaiterArmStop1000(b *testing.B) {
	sigs := make([]Signal, 1000)
	w := NewWaiter()
	b.ReportAllocs()
	for b.Loop() {
		for i := range sigs {
			w.Add(&sigs[i])
		}
		w.Stop()
	}
}

// BenchmarkWaiterHotPartition is one wake-up and Rearm of a Waiter armed on
// 1000 partitions, one of which is appended to on every op.
func BenchmarkWaiterHotPartition(b *testing.B) {
	sigs := make([]Signal, 1000)
	w := NewWaiter()
	for i := range sigs {
		w.Add(&sigs[i])
	}
	b.ReportAllocs()
	for b.Loop() {
		sigs[500].Notify()
		<-w.C()
		w.Rearm()
	}
	w.Stop()
}
