package replica

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// Hand-driven Core tests. Replica 1 leads unless a test says otherwise; the
// partition has replicas 1, 2, 3; time is t0 plus offsets.

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const lag = time.Second

func at(d time.Duration) time.Time { return t0.Add(d) }

func md(leader, leaderEpoch, partitionEpoch int32, isr ...int32) Metadata {
	return Metadata{Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch,
		Replicas: []int32{1, 2, 3}, ISR: isr}
}

// newLeader returns replica 1 leading epoch 5 (partition epoch 10) with a log
// [0, leo) and a checkpointed HW hw.
func newLeader(t *testing.T, leo, hw int64, isr ...int32) *Core {
	t.Helper()
	c := New(1, Config{LagTime: lag}, 0, leo, hw)
	c.BecomeLeader(t0, md(1, 5, 10, isr...), leo)
	return c
}

// fetch is a follower fetch at offset with no epoch check (LastFetchedEpoch -1).
func fetch(t *testing.T, c *Core, now time.Time, replica int32, offset int64) Ready {
	t.Helper()
	_, r, err := c.OnFollowerFetch(now, FollowerFetch{Replica: replica, BrokerEpoch: int64(100 + replica),
		FetchOffset: offset, LastFetchedEpoch: -1})
	if err != nil {
		t.Fatalf("OnFollowerFetch(%d at %d) = %v", replica, offset, err)
	}
	return r
}

func TestHighWatermarkIsMinOverMaximalISR(t *testing.T) {
	tests := []struct {
		name    string
		isr     []int32
		fetches [][2]int64 // replica, offset
		want    int64
	}{
		{"every member fetched", []int32{1, 2, 3}, [][2]int64{{2, 7}, {3, 9}}, 7},
		{"a member has not fetched", []int32{1, 2, 3}, [][2]int64{{2, 9}}, 0},
		{"non-members do not count", []int32{1, 2}, [][2]int64{{2, 8}, {3, 1}}, 8},
		{"leader alone", []int32{1}, nil, 10},
		{"a stale lower fetch does not move it back", []int32{1, 2}, [][2]int64{{2, 9}, {2, 4}}, 9},
		{"capped by the leader's LEO", []int32{1, 2, 3}, [][2]int64{{2, 10}, {3, 10}}, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newLeader(t, 10, 0, tc.isr...)
			for i, f := range tc.fetches {
				fetch(t, c, at(time.Duration(i)*time.Millisecond), int32(f[0]), f[1])
			}
			if got := c.HighWatermark(); got != tc.want {
				t.Fatalf("HighWatermark() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestHighWatermarkCountsInFlightChanges(t *testing.T) {
	t.Run("a member being added counts", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2)
		fetch(t, c, at(0), 2, 10) // HW 10
		c.Appended(20)
		r := fetch(t, c, at(time.Millisecond), 3, 10) // at the HW and the epoch start: expand
		if r.Propose == nil || !slices.Equal(r.Propose.ISR, []int32{1, 2, 3}) {
			t.Fatalf("Propose = %+v, want ISR [1 2 3]", r.Propose)
		}
		fetch(t, c, at(2*time.Millisecond), 2, 20)
		if got := c.HighWatermark(); got != 10 {
			t.Fatalf("HighWatermark() = %d while 3 (at 10) is being added, want 10", got)
		}
	})
	t.Run("a member being removed still counts until committed", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2, 3)
		fetch(t, c, at(0), 2, 10)
		r := c.Tick(at(lag + time.Millisecond)) // 3 never fetched
		if r.Propose == nil || !slices.Equal(r.Propose.ISR, []int32{1, 2}) {
			t.Fatalf("Tick Propose = %+v, want ISR [1 2]", r.Propose)
		}
		fetch(t, c, at(lag+2*time.Millisecond), 2, 10)
		if got := c.HighWatermark(); got != 0 {
			t.Fatalf("HighWatermark() = %d before the shrink commits, want 0", got)
		}
		r = c.Update(md(1, 5, 11, 1, 2))
		if !r.HWChanged || c.HighWatermark() != 10 {
			t.Fatalf("after the shrink commits: Ready %+v, HighWatermark() = %d, want 10", r, c.HighWatermark())
		}
		if c.Pending() != nil {
			t.Fatalf("Pending() = %+v after the change committed, want nil", c.Pending())
		}
	})
}

func TestNewLeaderKeepsHWUntilFollowersFetch(t *testing.T) {
	c := New(1, Config{LagTime: lag}, 0, 10, 4)
	if r := c.BecomeLeader(t0, md(1, 6, 10, 1, 2, 3), 10); r.HWChanged || c.HighWatermark() != 4 {
		t.Fatalf("BecomeLeader: Ready %+v, HighWatermark() = %d, want 4 unchanged", r, c.HighWatermark())
	}
	if c.EpochStartOffset() != 10 {
		t.Fatalf("EpochStartOffset() = %d, want 10", c.EpochStartOffset())
	}
	fetch(t, c, at(0), 2, 10)
	if got := c.HighWatermark(); got != 4 {
		t.Fatalf("HighWatermark() = %d with 3 not yet fetched, want 4", got)
	}
	fetch(t, c, at(time.Millisecond), 3, 8)
	if got := c.HighWatermark(); got != 8 {
		t.Fatalf("HighWatermark() = %d, want 8", got)
	}
}

func TestNewLeadershipForgetsFollowers(t *testing.T) {
	c := New(1, Config{LagTime: lag}, 0, 20, 5)
	c.BecomeLeader(t0, md(1, 5, 10, 1, 2, 3), 20)
	fetch(t, c, at(0), 3, 18) // 2 has not fetched: HW stays 5
	c.Tick(at(lag + time.Millisecond))
	if c.Pending() == nil {
		t.Fatal("no shrink proposed for 2")
	}
	c.BecomeLeader(at(lag+2*time.Millisecond), md(1, 7, 12, 1, 2, 3), 20)
	if c.Pending() != nil {
		t.Fatalf("Pending() = %+v after a new leadership, want nil", c.Pending())
	}
	fetch(t, c, at(lag+3*time.Millisecond), 2, 20)
	if got := c.HighWatermark(); got != 5 {
		t.Fatalf("HighWatermark() = %d: 3's fetch in the earlier leadership counted, want 5", got)
	}
}

func TestCaughtUpAndShrink(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, c *Core) // drives replica 3; replica 2 is kept at the LEO
		tick time.Duration
		want []int32 // proposed ISR; nil: no proposal
	}{
		{"a member that never fetches leaves after LagTime", func(t *testing.T, c *Core) {}, lag + time.Millisecond, []int32{1, 2}},
		{"not before LagTime", func(t *testing.T, c *Core) {}, lag, nil},
		{"a fetch at the LEO is caught up", func(t *testing.T, c *Core) {
			fetch(t, c, at(500*time.Millisecond), 3, 10)
		}, 1400 * time.Millisecond, nil},
		{"a member at the LEO is never out of sync", func(t *testing.T, c *Core) {
			fetch(t, c, at(10*time.Millisecond), 3, 10)
		}, 10 * lag, nil},
		{"reaching the LEO of the previous fetch counts from that fetch", func(t *testing.T, c *Core) {
			fetch(t, c, at(100*time.Millisecond), 3, 5) // leader LEO 10 then
			c.Appended(20)
			fetch(t, c, at(900*time.Millisecond), 3, 10) // reaches 10: caught up as of 100ms
		}, 100*time.Millisecond + lag - time.Millisecond, nil},
		{"... but only from that fetch", func(t *testing.T, c *Core) {
			fetch(t, c, at(100*time.Millisecond), 3, 5)
			c.Appended(20)
			fetch(t, c, at(900*time.Millisecond), 3, 10)
		}, 100*time.Millisecond + lag + time.Millisecond, []int32{1, 2}},
		{"behind both LEOs is not caught up", func(t *testing.T, c *Core) {
			fetch(t, c, at(100*time.Millisecond), 3, 5)
			c.Appended(20)
			fetch(t, c, at(900*time.Millisecond), 3, 9)
		}, lag + time.Millisecond, []int32{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newLeader(t, 10, 0, 1, 2, 3)
			tc.run(t, c)
			fetch(t, c, at(tc.tick), 2, c.LogEndOffset())
			r := c.Tick(at(tc.tick))
			var got []int32
			if r.Propose != nil {
				got = r.Propose.ISR
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Tick(%v) proposes %v, want %v", tc.tick, got, tc.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	// Replica 1 leads from LEO 10 with a checkpointed HW of 4; replica 2 is
	// in the ISR and has fetched to 10, so the HW is 10 and the epoch starts at 10.
	tests := []struct {
		name   string
		offset int64
		hwTo   int64 // replica 2's fetch offset (sets the HW)
		want   bool
	}{
		{"below the HW", 6, 10, false},
		{"past the epoch start, below the HW", 12, 16, false},
		{"at the HW, below the epoch start", 6, 6, false},
		{"at the HW and the epoch start", 10, 10, true},
		{"beyond both", 12, 10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(1, Config{LagTime: lag}, 0, 10, 4)
			c.BecomeLeader(t0, md(1, 5, 10, 1, 2), 10)
			c.Appended(20)
			fetch(t, c, at(0), 2, tc.hwTo)
			r := fetch(t, c, at(time.Millisecond), 3, tc.offset)
			if got := r.Propose != nil; got != tc.want {
				t.Fatalf("HW %d: fetch at %d proposes %+v, want a proposal %v", c.HighWatermark(), tc.offset, r.Propose, tc.want)
			}
			if tc.want {
				p := r.Propose
				if !slices.Equal(p.ISR, []int32{1, 2, 3}) || p.LeaderEpoch != 5 || p.PartitionEpoch != 10 || p.BrokerEpochs[3] != 103 {
					t.Fatalf("Propose = %+v, want ISR [1 2 3] at epochs 5/10 with broker epoch 103 for 3", p)
				}
			}
		})
	}
}

func TestOneChangeInFlight(t *testing.T) {
	c := newLeader(t, 10, 0, 1, 2)
	r := c.Tick(at(lag + time.Millisecond)) // 2 never fetched: shrink to [1]
	if r.Propose == nil || !slices.Equal(r.Propose.ISR, []int32{1}) {
		t.Fatalf("Tick Propose = %+v, want ISR [1]", r.Propose)
	}
	if r := c.Tick(at(2 * lag)); r.Propose != nil {
		t.Fatalf("second Tick proposed %+v with a change in flight", r.Propose)
	}
	if r := fetch(t, c, at(2*lag), 3, 10); r.Propose != nil {
		t.Fatalf("expand proposed %+v with a change in flight", r.Propose)
	}
	c.Update(md(1, 5, 11, 1))
	if c.Pending() != nil {
		t.Fatalf("Pending() = %+v after the image committed it", c.Pending())
	}
	if r := fetch(t, c, at(2*lag), 3, 10); r.Propose == nil || !slices.Equal(r.Propose.ISR, []int32{1, 3}) ||
		r.Propose.PartitionEpoch != 11 {
		t.Fatalf("expand after commit = %+v, want ISR [1 3] at partition epoch 11", r.Propose)
	}
}

func TestProposalDone(t *testing.T) {
	tests := []struct {
		name        string
		imageEpoch  int32 // the partition epoch the image shows when the answer is applied
		answerEpoch int32
		wantDropped bool
	}{
		{"refused: image still at the proposal's epoch", 10, 10, true},
		{"answer for another proposal", 10, 9, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newLeader(t, 10, 0, 1, 2, 3)
			fetch(t, c, at(0), 2, 10)
			if r := c.Tick(at(lag + time.Millisecond)); r.Propose == nil {
				t.Fatal("no shrink proposed")
			}
			c.ProposalDone(tc.answerEpoch)
			if got := c.Pending() == nil; got != tc.wantDropped {
				t.Fatalf("Pending() = %+v, want dropped %v", c.Pending(), tc.wantDropped)
			}
			if tc.wantDropped {
				if r := c.Tick(at(lag + 2*time.Millisecond)); r.Propose == nil {
					t.Fatal("no proposal after the refused one was dropped")
				}
			}
		})
	}
	t.Run("accepted: the image moved on first", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2, 3)
		fetch(t, c, at(0), 2, 10)
		c.Tick(at(lag + time.Millisecond))
		c.Update(md(1, 5, 11, 1, 2))
		c.ProposalDone(10)
		if c.Pending() != nil {
			t.Fatalf("Pending() = %+v", c.Pending())
		}
		if _, m := c.Role(); !slices.Equal(m.ISR, []int32{1, 2}) {
			t.Fatalf("ISR = %v, want [1 2]", m.ISR)
		}
	})
}

func TestWaits(t *testing.T) {
	t.Run("nil once the HW passes", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2, 3)
		c.Appended(13)
		if r := c.AddWait(7, 13, 2); len(r.Completed) != 0 {
			t.Fatalf("AddWait completed %+v before the HW passed", r.Completed)
		}
		fetch(t, c, at(0), 2, 13)
		if r := fetch(t, c, at(0), 3, 12); len(r.Completed) != 0 {
			t.Fatalf("completed %+v at HW %d", r.Completed, c.HighWatermark())
		}
		r := fetch(t, c, at(0), 3, 13)
		if want := []Completion{{ID: 7}}; !slices.Equal(r.Completed, want) {
			t.Fatalf("Completed = %+v, want %+v", r.Completed, want)
		}
	})
	t.Run("in order of end offset", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2)
		c.Appended(20)
		c.AddWait(1, 20, 1)
		c.AddWait(2, 12, 1)
		c.AddWait(3, 15, 1)
		r := fetch(t, c, at(0), 2, 15)
		if want := []Completion{{ID: 2}, {ID: 3}}; !slices.Equal(r.Completed, want) {
			t.Fatalf("Completed = %+v, want %+v", r.Completed, want)
		}
	})
	t.Run("not enough replicas after the append", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2, 3)
		c.Appended(12)
		c.AddWait(1, 12, 2)
		c.Tick(at(lag + time.Millisecond))
		r := c.Update(md(1, 5, 11, 1)) // the shrink commits: HW jumps to the LEO, ISR [1]
		if want := []Completion{{ID: 1, Err: ErrNotEnoughReplicasAfterAppend}}; !slices.Equal(r.Completed, want) {
			t.Fatalf("Completed = %+v, want %+v", r.Completed, want)
		}
		c.Appended(13)
		r = c.AddWait(2, 13, 2) // the HW is already there: completes at once
		if want := []Completion{{ID: 2, Err: ErrNotEnoughReplicasAfterAppend}}; !slices.Equal(r.Completed, want) {
			t.Fatalf("AddWait Completed = %+v, want %+v", r.Completed, want)
		}
	})
	t.Run("not leader", func(t *testing.T) {
		c := newLeader(t, 10, 0, 1, 2, 3)
		c.Appended(12)
		c.AddWait(1, 11, 2)
		c.AddWait(2, 12, 2)
		if !c.CancelWait(2) || c.CancelWait(2) {
			t.Fatal("CancelWait(2) should succeed once")
		}
		r := c.BecomeFollower(md(2, 6, 11, 1, 2, 3))
		if want := []Completion{{ID: 1, Err: ErrNotLeader}}; !slices.Equal(r.Completed, want) {
			t.Fatalf("BecomeFollower Completed = %+v, want %+v", r.Completed, want)
		}
		r = c.AddWait(3, 13, 2)
		if want := []Completion{{ID: 3, Err: ErrNotLeader}}; !slices.Equal(r.Completed, want) {
			t.Fatalf("AddWait on a follower = %+v, want %+v", r.Completed, want)
		}
	})
}

func TestCheckMinISR(t *testing.T) {
	c := newLeader(t, 10, 0, 1, 2)
	f := New(2, Config{}, 0, 10, 0)
	f.BecomeFollower(md(1, 5, 10, 1, 2))
	tests := []struct {
		name   string
		c      *Core
		minISR int
		want   error
	}{
		{"enough", c, 2, nil},
		{"too few", c, 3, ErrNotEnoughReplicas},
		{"follower", f, 1, ErrNotLeader},
		{"no role yet", New(3, Config{}, 0, 0, 0), 1, ErrNotLeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.c.CheckMinISR(tc.minISR); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("CheckMinISR(%d) = %v, want %v", tc.minISR, err, tc.want)
			}
		})
	}
}

func TestTruncationOffset(t *testing.T) {
	tests := []struct {
		name       string
		leo, hw    int64
		div, local EpochEnd
		want       int64
	}{
		{"same epoch, leader ends first", 20, 5, EpochEnd{3, 12}, EpochEnd{3, 15}, 12},
		{"same epoch, follower ends first", 20, 5, EpochEnd{3, 18}, EpochEnd{3, 15}, 15},
		{"follower does not know the epoch: its own end for an older one", 20, 5, EpochEnd{4, 18}, EpochEnd{2, 11}, 11},
		{"follower knows no epoch: the leader's end", 20, 5, EpochEnd{3, 12}, EpochEnd{-1, -1}, 12},
		{"never above the LEO", 10, 5, EpochEnd{3, 12}, EpochEnd{-1, -1}, 10},
		{"never to the HW", 20, 15, EpochEnd{3, 12}, EpochEnd{3, 14}, 12},
		{"leader knows no epoch: from the start", 20, 5, EpochEnd{-1, -1}, EpochEnd{-1, -1}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(2, Config{}, 0, tc.leo, tc.hw)
			if got := c.TruncationOffset(tc.div, tc.local); got != tc.want {
				t.Fatalf("TruncationOffset(%+v, %+v) = %d, want %d", tc.div, tc.local, got, tc.want)
			}
		})
	}
}

func TestFollowerFetchDivergence(t *testing.T) {
	tests := []struct {
		name    string
		ff      FollowerFetch
		wantDiv *EpochEnd
		wantErr error
	}{
		{"no epoch sent: no check", FollowerFetch{Replica: 2, FetchOffset: 8, LastFetchedEpoch: -1}, nil, nil},
		{"consistent", FollowerFetch{Replica: 2, FetchOffset: 8, LastFetchedEpoch: 4, LocalEnd: EpochEnd{4, 9}}, nil, nil},
		{"consistent at the epoch's end", FollowerFetch{Replica: 2, FetchOffset: 9, LastFetchedEpoch: 4, LocalEnd: EpochEnd{4, 9}}, nil, nil},
		{"epoch unknown to the leader", FollowerFetch{Replica: 2, FetchOffset: 8, LastFetchedEpoch: 4, LocalEnd: EpochEnd{3, 6}},
			&EpochEnd{3, 6}, nil},
		{"epoch ends earlier on the leader", FollowerFetch{Replica: 2, FetchOffset: 8, LastFetchedEpoch: 4, LocalEnd: EpochEnd{4, 7}},
			&EpochEnd{4, 7}, nil},
		{"leader knows no epoch <= the follower's", FollowerFetch{Replica: 2, FetchOffset: 8, LastFetchedEpoch: 4, LocalEnd: EpochEnd{-1, -1}},
			nil, ErrOffsetOutOfRange},
		{"beyond the LEO", FollowerFetch{Replica: 2, FetchOffset: 11, LastFetchedEpoch: -1}, nil, ErrOffsetOutOfRange},
		{"beyond the log end", FollowerFetch{Replica: 2, FetchOffset: 13, LastFetchedEpoch: -1, LogEnd: 12}, nil, ErrOffsetOutOfRange},
		{"not a replica", FollowerFetch{Replica: 9, FetchOffset: 1, LastFetchedEpoch: -1}, nil, ErrNotReplica},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newLeader(t, 10, 0, 1, 2)
			d, _, err := c.OnFollowerFetch(t0, tc.ff)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("OnFollowerFetch(%+v) error = %v, want %v", tc.ff, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if (d.Diverging == nil) != (tc.wantDiv == nil) || d.Diverging != nil && *d.Diverging != *tc.wantDiv {
				t.Fatalf("Diverging = %+v, want %+v", d.Diverging, tc.wantDiv)
			}
			wantHW := tc.ff.FetchOffset
			if d.Diverging != nil {
				wantHW = 0 // a diverging fetch records no progress
			}
			if d.Upper != 10 || c.HighWatermark() != wantHW {
				t.Fatalf("Upper %d, HighWatermark() %d; want 10, %d", d.Upper, c.HighWatermark(), wantHW)
			}
		})
	}
	t.Run("unsynced tail", func(t *testing.T) {
		// Under durability=always the log may run ahead of the synced LEO the core counts:
		// followers may read up to it, but the leader's HW stays within what it synced.
		c := newLeader(t, 10, 0, 1, 2)
		d, _, err := c.OnFollowerFetch(t0, FollowerFetch{Replica: 2, FetchOffset: 12, LastFetchedEpoch: -1, LogEnd: 14})
		if err != nil || d.Upper != 14 || c.HighWatermark() != 10 {
			t.Fatalf("fetch at 12 with log end 14: Upper %d, HW %d, err %v; want 14, 10, nil", d.Upper, c.HighWatermark(), err)
		}
		c.Appended(14)
		if c.HighWatermark() != 12 {
			t.Fatalf("after the sync: HW %d, want 12", c.HighWatermark())
		}
	})
	f := New(2, Config{}, 0, 10, 0)
	f.BecomeFollower(md(1, 5, 10, 1, 2))
	if _, _, err := f.OnFollowerFetch(t0, FollowerFetch{Replica: 3, LastFetchedEpoch: -1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("OnFollowerFetch on a follower = %v, want ErrNotLeader", err)
	}
}

func TestFollowerHW(t *testing.T) {
	tests := []struct {
		name           string
		leo, leaderHW  int64
		want           int64
		wantHWReported bool
	}{
		{"the leader's HW within the log", 20, 12, 12, true},
		{"capped by the own LEO", 10, 12, 10, true},
		{"unchanged", 20, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(2, Config{}, 0, tc.leo, 0)
			c.BecomeFollower(md(1, 5, 10, 1, 2))
			r := c.FollowerFetched(tc.leaderHW, 0)
			if c.HighWatermark() != tc.want || r.HWChanged != tc.wantHWReported {
				t.Fatalf("FollowerFetched(%d): HighWatermark() %d, Ready %+v; want %d, changed %v", tc.leaderHW,
					c.HighWatermark(), r, tc.want, tc.wantHWReported)
			}
		})
	}
	t.Run("truncation clamps it", func(t *testing.T) {
		c := New(2, Config{}, 0, 20, 15)
		c.BecomeFollower(md(1, 5, 10, 1, 2))
		c.Truncated(0, 12)
		if c.HighWatermark() != 12 || c.LogEndOffset() != 12 {
			t.Fatalf("after Truncated(0, 12): HW %d, LEO %d, want 12, 12", c.HighWatermark(), c.LogEndOffset())
		}
	})
}
