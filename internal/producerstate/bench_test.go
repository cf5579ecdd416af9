package producerstate

import (
	"bytes"
	"testing"
)

// BenchmarkCheckUpdate is the leader's per-batch cost: Check then Update of
// an in-order batch, round-robin over 1000 producers with full windows.
func BenchmarkCheckUpdate(b *testing.B) {
	const producers = 1000
	s := New()
	seq := make([]int32, producers)
	leo := int64(0)
	for i := range producers * MaxRetainedBatches {
		pid := int64(i % producers)
		s.Update(NewBatchMeta(pid, 0, seq[pid], leo, 9, leo, false))
		seq[pid] += 10
		leo += 10
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pid := int64(i % producers)
		m := NewBatchMeta(pid, 0, seq[pid], leo, 9, leo, false)
		if d, err := s.Check(m); d != nil || err != nil {
			b.Fatalf("Check = %v, %v", d, err)
		}
		s.Update(m)
		seq[pid] += 10
		leo += 10
		i++
	}
}

// BenchmarkCheckDuplicate is the cost of recognising a retried batch.
func BenchmarkCheckDuplicate(b *testing.B) {
	s := New()
	for i := range int32(MaxRetainedBatches) {
		s.Update(NewBatchMeta(1, 0, i*10, int64(i*10), 9, 0, false))
	}
	m := NewBatchMeta(1, 0, 0, 0, 9, 0, false)
	b.ReportAllocs()
	for b.Loop() {
		if d, err := s.Check(m); d == nil || err != nil {
			b.Fatalf("Check = %v, %v", d, err)
		}
	}
}

func bigState() *State {
	s := New()
	leo := int64(0)
	for i := range 10_000 * MaxRetainedBatches {
		pid := int64(i % 10_000)
		s.Update(NewBatchMeta(pid, 3, int32(i/10_000)*4, leo, 3, leo, false))
		leo += 4
	}
	return s
}

func BenchmarkAppendSnapshot10kProducers(b *testing.B) {
	s := bigState()
	buf := make([]byte, 0, s.SnapshotSize())
	b.SetBytes(int64(s.SnapshotSize()))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = s.AppendSnapshot(buf[:0], 1<<40); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSnapshot10kProducers(b *testing.B) {
	enc, err := bigState().AppendSnapshot(nil, 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadSnapshot(bytes.NewReader(enc)); err != nil {
			b.Fatal(err)
		}
	}
}
