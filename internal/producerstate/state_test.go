package producerstate

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// step is one produce attempt in a scenario: a batch of n records from
// (pid, epoch) starting at sequence seq.
type step struct {
	pid   int64
	epoch int16
	seq   int32
	n     int32
	want  error // nil: accepted (then appended) or a duplicate
	dupOf int   // index of the earlier step whose offsets a duplicate returns; -1: not a duplicate
}

func ok(pid int64, epoch int16, seq, n int32) step {
	return step{pid: pid, epoch: epoch, seq: seq, n: n, dupOf: -1}
}

func fail(pid int64, epoch int16, seq, n int32, err error) step {
	return step{pid: pid, epoch: epoch, seq: seq, n: n, want: err, dupOf: -1}
}

func dup(pid int64, epoch int16, seq, n int32, of int) step {
	return step{pid: pid, epoch: epoch, seq: seq, n: n, dupOf: of}
}

// run plays steps against s as a leader would: Check, then append and Update
// when accepted. Offsets come from a simulated log end offset starting at
// leo. It returns the metas of all steps (appended or not) and the new LEO.
func run(t *testing.T, s *State, leo int64, steps []step) ([]BatchMeta, int64) {
	t.Helper()
	metas := make([]BatchMeta, len(steps))
	for i, st := range steps {
		b := NewBatchMeta(st.pid, st.epoch, st.seq, leo, st.n-1, 1000+leo, false)
		metas[i] = b
		d, err := s.Check(b)
		if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("step %d: Check(pid %d epoch %d seq %d n %d) error = %v, want %v",
				i, st.pid, st.epoch, st.seq, st.n, err, st.want)
		}
		if err != nil {
			if d != nil {
				t.Fatalf("step %d: Check returned both duplicate %+v and error %v", i, d, err)
			}
			continue
		}
		if st.dupOf >= 0 {
			orig := metas[st.dupOf]
			want := Duplicate{FirstOffset: orig.FirstOffset, LastOffset: orig.LastOffset, Timestamp: orig.MaxTimestamp}
			if d == nil || *d != want {
				t.Fatalf("step %d: Check duplicate = %+v, want %+v (step %d)", i, d, want, st.dupOf)
			}
			metas[i] = orig
			continue
		}
		if d != nil {
			t.Fatalf("step %d: Check unexpected duplicate %+v", i, d)
		}
		s.Update(b)
		leo += int64(st.n)
	}
	return metas, leo
}

func TestCheckScenarios(t *testing.T) {
	const maxSeq = math.MaxInt32
	cases := []struct {
		name  string
		steps []step
	}{
		{"first batch at zero", []step{ok(1, 0, 0, 1)}},
		{"unknown producer any first sequence (KIP-360)", []step{ok(1, 0, 42, 3), ok(1, 0, 45, 1)}},
		{"unknown producer high epoch", []step{ok(1, 7, 9, 1), ok(1, 7, 10, 1)}},
		{"in order", []step{ok(1, 0, 0, 5), ok(1, 0, 5, 1), ok(1, 0, 6, 10), ok(1, 0, 16, 1)}},
		{"duplicate of each of the last five", []step{
			ok(1, 0, 0, 2), ok(1, 0, 2, 2), ok(1, 0, 4, 2), ok(1, 0, 6, 2), ok(1, 0, 8, 2), ok(1, 0, 10, 2),
			dup(1, 0, 2, 2, 1), dup(1, 0, 4, 2, 2), dup(1, 0, 6, 2, 3), dup(1, 0, 8, 2, 4), dup(1, 0, 10, 2, 5),
			ok(1, 0, 12, 1),
		}},
		{"duplicate older than five is out of order", []step{
			ok(1, 0, 0, 2), ok(1, 0, 2, 2), ok(1, 0, 4, 2), ok(1, 0, 6, 2), ok(1, 0, 8, 2), ok(1, 0, 10, 2),
			fail(1, 0, 0, 2, ErrOutOfOrderSequence),
		}},
		{"duplicate needs the exact range", []step{
			ok(1, 0, 0, 5), ok(1, 0, 5, 5),
			fail(1, 0, 5, 4, ErrOutOfOrderSequence), fail(1, 0, 6, 4, ErrOutOfOrderSequence),
			fail(1, 0, 0, 10, ErrOutOfOrderSequence), dup(1, 0, 5, 5, 1),
		}},
		{"duplicate of the first batch of an unknown producer", []step{ok(1, 2, 17, 3), dup(1, 2, 17, 3, 0)}},
		{"gap", []step{ok(1, 0, 0, 5), fail(1, 0, 6, 1, ErrOutOfOrderSequence), ok(1, 0, 5, 1)}},
		{"overlap", []step{ok(1, 0, 0, 5), fail(1, 0, 3, 5, ErrOutOfOrderSequence), ok(1, 0, 5, 5)}},
		{"sequence going back", []step{ok(1, 0, 10, 5), fail(1, 0, 9, 1, ErrOutOfOrderSequence)}},
		{"epoch bump at zero", []step{ok(1, 0, 0, 5), ok(1, 1, 0, 2), ok(1, 1, 2, 1)}},
		{"epoch bump by more than one", []step{ok(1, 0, 0, 5), ok(1, 9, 0, 1)}},
		{"epoch bump not at zero", []step{ok(1, 0, 0, 5), fail(1, 1, 5, 1, ErrOutOfOrderSequence), fail(1, 1, 1, 1, ErrOutOfOrderSequence)}},
		{"fenced old epoch", []step{ok(1, 3, 0, 1), fail(1, 2, 1, 1, ErrInvalidProducerEpoch), fail(1, 2, 0, 1, ErrInvalidProducerEpoch)}},
		{"retry of an old epoch batch after bump is fenced", []step{
			ok(1, 0, 0, 5), ok(1, 1, 0, 5), fail(1, 0, 0, 5, ErrInvalidProducerEpoch),
		}},
		{"new epoch forgets old duplicates", []step{
			ok(1, 0, 0, 5), ok(1, 1, 0, 3), fail(1, 1, 0, 5, ErrOutOfOrderSequence), dup(1, 1, 0, 3, 1),
		}},
		{"wrap at MaxInt32", []step{ok(1, 0, maxSeq-2, 3), ok(1, 0, 0, 1), ok(1, 0, 1, 1)}},
		{"batch straddling the wrap", []step{ok(1, 0, maxSeq-1, 4), ok(1, 0, 2, 1), dup(1, 0, maxSeq-1, 4, 0)}},
		{"no wrap shortcut before MaxInt32", []step{ok(1, 0, maxSeq-5, 3), fail(1, 0, 0, 1, ErrOutOfOrderSequence), ok(1, 0, maxSeq-2, 1)}},
		{"after MaxInt32 only zero follows", []step{ok(1, 0, maxSeq, 1), fail(1, 0, 1, 1, ErrOutOfOrderSequence), ok(1, 0, 0, 1)}},
		{"non-idempotent always passes", []step{
			ok(-1, -1, -1, 3), ok(-1, -1, -1, 3), ok(-1, 5, 7, 1), ok(-1, -1, 0, 1), ok(-2, 0, 99, 1),
		}},
		{"negative sequence is an invalid record", []step{
			fail(1, 0, -1, 1, ErrInvalidSequence), ok(1, 0, 0, 1), fail(1, 0, -5, 1, ErrInvalidSequence),
		}},
		{"producers are independent", []step{
			ok(1, 0, 0, 2), ok(2, 0, 0, 3), ok(1, 0, 2, 1), fail(2, 0, 2, 1, ErrOutOfOrderSequence),
			ok(2, 0, 3, 1), dup(1, 0, 0, 2, 0), ok(3, 5, 100, 1),
		}},
		{"producer epoch -1 with an id accepts any sequence", []step{ok(1, -1, 7, 1), ok(1, -1, 100, 1), ok(1, 0, 50, 1), fail(1, 0, 52, 1, ErrOutOfOrderSequence)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, New(), 0, tc.steps)
		})
	}
}

func TestZeroValueState(t *testing.T) {
	var s State
	if d, err := s.Check(NewBatchMeta(1, 0, 0, 0, 0, 0, false)); d != nil || err != nil {
		t.Fatalf("Check on zero State = %v, %v", d, err)
	}
	s.Update(NewBatchMeta(1, 0, 0, 0, 0, 0, false))
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
	var z State
	z.TruncateTo(0)
	z.ExpireIdle(time.Now(), time.Hour)
	z.Reset()
	if c := z.Clone(); c.Len() != 0 {
		t.Fatalf("Clone of zero State has %d producers", c.Len())
	}
}

func TestNewBatchMeta(t *testing.T) {
	cases := []struct {
		base, delta, wantLast int32
	}{
		{0, 0, 0},
		{0, 4, 4},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 3, 1},
		{math.MaxInt32 - 10, 10, math.MaxInt32},
		{math.MaxInt32 - 10, 11, 0},
		{NoSequence, 5, NoSequence},
	}
	for _, tc := range cases {
		b := NewBatchMeta(3, 1, tc.base, 100, tc.delta, 7, true)
		if b.LastSequence != tc.wantLast {
			t.Errorf("NewBatchMeta(base %d, delta %d).LastSequence = %d, want %d", tc.base, tc.delta, b.LastSequence, tc.wantLast)
		}
		if b.FirstOffset != 100 || b.LastOffset != 100+int64(tc.delta) || !b.Transactional || b.MaxTimestamp != 7 {
			t.Errorf("NewBatchMeta(base %d, delta %d) = %+v", tc.base, tc.delta, b)
		}
	}
}

func TestUpdateRetainsFiveAndEpochChangeClears(t *testing.T) {
	s := New()
	for i := range int32(7) {
		s.Update(NewBatchMeta(9, 0, i*2, int64(i*2), 1, int64(i), false))
	}
	p, ok := s.Producer(9)
	if !ok || len(p.Batches) != MaxRetainedBatches || p.Batches[0].BaseSequence != 4 || p.LastSequence() != 13 || p.LastTimestamp() != 6 {
		t.Fatalf("Producer(9) = %+v, %v; want 5 batches with sequences 4..13", p, ok)
	}
	// A replicated batch of another epoch (even a lower one, as Kafka's
	// follower path does) replaces the retained batches.
	s.Update(NewBatchMeta(9, 4, 0, 20, 0, 50, true))
	s.Update(NewBatchMeta(9, 2, 1, 21, 0, 51, false))
	p, _ = s.Producer(9)
	want := Producer{ProducerID: 9, Epoch: 2, Batches: []BatchMeta{NewBatchMeta(9, 2, 1, 21, 0, 51, false)}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("after epoch changes Producer(9) = %+v, want %+v", p, want)
	}
	// Non-idempotent batches leave no trace.
	s.Update(NewBatchMeta(NoProducerID, NoProducerEpoch, NoSequence, 22, 3, 0, false))
	if s.Len() != 1 {
		t.Fatalf("Len = %d after a non-idempotent Update, want 1", s.Len())
	}
	if _, ok := s.Producer(NoProducerID); ok {
		t.Fatal("Producer(-1) exists")
	}
}

func TestUpdateIgnoresReplayedBatches(t *testing.T) {
	s := New()
	var batches []BatchMeta
	for i := range int32(4) {
		batches = append(batches, NewBatchMeta(1, 2, i*2, int64(i*2), 1, int64(i), false))
	}
	for _, b := range batches[:3] {
		s.Update(b)
	}
	want := s.Producers()
	// Replaying from before the state's end (e.g. from the start of the
	// segment holding a snapshot's offset) changes nothing already applied,
	// whatever the epoch of the replayed batch...
	for _, b := range batches[:3] {
		s.Update(b)
	}
	s.Update(NewBatchMeta(1, 1, 0, 3, 0, 0, false))
	if got := s.Producers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after replay Producers = %+v, want %+v", got, want)
	}
	// ...and the first new batch is applied.
	s.Update(batches[3])
	p, _ := s.Producer(1)
	if !reflect.DeepEqual(p.Batches, batches) {
		t.Fatalf("after replay and a new batch: %+v, want %+v", p.Batches, batches)
	}
	if _, err := s.AppendSnapshot(nil, 8); err != nil {
		t.Fatalf("AppendSnapshot after replay: %v", err)
	}
}

func TestTruncateTo(t *testing.T) {
	s := New()
	// Offsets: A 0-1, B 2, A 3-4, B 5-7, A 8, C 9.
	metas, leo := run(t, s, 0, []step{
		ok(1, 0, 0, 2), ok(2, 3, 0, 1), ok(1, 0, 2, 2), ok(2, 3, 1, 3), ok(1, 0, 4, 1), ok(3, 0, 0, 1),
	})
	if leo != 10 {
		t.Fatalf("leo = %d", leo)
	}
	if removed := s.TruncateTo(5); removed != 1 {
		t.Fatalf("TruncateTo(5) removed %d producers, want 1 (producer 3)", removed)
	}
	if _, ok := s.Producer(3); ok {
		t.Fatal("producer 3 survived truncation below its only batch")
	}
	a, _ := s.Producer(1)
	if want := []BatchMeta{metas[0], metas[2]}; !reflect.DeepEqual(a.Batches, want) {
		t.Fatalf("producer 1 batches = %+v, want %+v", a.Batches, want)
	}
	b, _ := s.Producer(2)
	if want := []BatchMeta{metas[1]}; !reflect.DeepEqual(b.Batches, want) {
		t.Fatalf("producer 2 batches = %+v, want %+v", b.Batches, want)
	}
	// The producers continue from their surviving batches; the truncated
	// batches are no longer duplicates but must be re-sent.
	run(t, s, 5, []step{
		fail(1, 0, 5, 1, ErrOutOfOrderSequence), ok(1, 0, 4, 1), ok(2, 3, 1, 3), ok(3, 0, 0, 1),
	})
	if removed := s.TruncateTo(0); removed != 3 || s.Len() != 0 {
		t.Fatalf("TruncateTo(0) removed %d, Len %d; want 3, 0", removed, s.Len())
	}
}

func TestExpireIdle(t *testing.T) {
	s := New()
	now := time.UnixMilli(10_000_000)
	s.Update(NewBatchMeta(1, 0, 0, 0, 0, now.UnixMilli()-int64(time.Hour/time.Millisecond), false))   // idle exactly 1h
	s.Update(NewBatchMeta(2, 0, 0, 1, 0, now.UnixMilli()-int64(time.Hour/time.Millisecond)+1, false)) // 1ms younger
	s.Update(NewBatchMeta(3, 0, 0, 2, 0, math.MinInt64, false))
	s.Update(NewBatchMeta(4, 0, 0, 3, 0, math.MaxInt64, false))
	if n := s.ExpireIdle(now, time.Hour); n != 2 {
		t.Fatalf("ExpireIdle removed %d, want 2", n)
	}
	for pid, want := range map[int64]bool{1: false, 2: true, 3: false, 4: true} {
		if _, ok := s.Producer(pid); ok != want {
			t.Errorf("producer %d present = %v, want %v", pid, ok, want)
		}
	}
	// An expired producer is unknown again: any sequence is accepted.
	if _, err := s.Check(NewBatchMeta(1, 0, 77, 4, 0, 0, false)); err != nil {
		t.Fatalf("Check after expiry: %v", err)
	}
	// The newest batch decides: producer 2 stays while its last batch is young.
	s.Update(NewBatchMeta(2, 0, 1, 5, 0, now.UnixMilli(), false))
	if n := s.ExpireIdle(now.Add(30*time.Minute), time.Hour); n != 0 {
		t.Fatalf("ExpireIdle removed %d, want 0", n)
	}
	if n := s.ExpireIdle(time.UnixMilli(math.MinInt64+5), math.MaxInt64); n != 0 {
		t.Fatalf("ExpireIdle with extreme values removed %d, want 0", n)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := New()
	s.Update(NewBatchMeta(1, 0, 0, 0, 0, 1, false))
	c := s.Clone()
	s.Update(NewBatchMeta(1, 0, 1, 1, 0, 2, false))
	s.Update(NewBatchMeta(2, 0, 0, 2, 0, 3, false))
	if c.Len() != 1 {
		t.Fatalf("clone Len = %d, want 1", c.Len())
	}
	if p, _ := c.Producer(1); len(p.Batches) != 1 {
		t.Fatalf("clone producer 1 has %d batches, want 1", len(p.Batches))
	}
	s.Reset()
	if s.Len() != 0 || c.Len() != 1 {
		t.Fatalf("after Reset: Len %d, clone Len %d", s.Len(), c.Len())
	}
}

func TestProducersSorted(t *testing.T) {
	s := New()
	for _, pid := range []int64{50, 3, 1000, 0, 7} {
		s.Update(NewBatchMeta(pid, 0, 0, pid, 0, 0, false))
	}
	var got []int64
	for _, p := range s.Producers() {
		got = append(got, p.ProducerID)
	}
	if want := []int64{0, 3, 7, 50, 1000}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Producers ids = %v, want %v", got, want)
	}
}
