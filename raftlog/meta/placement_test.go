package meta

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
)

func brokersN(n int, racks ...string) []BrokerInfo {
	var out []BrokerInfo
	for i := range n {
		b := BrokerInfo{NodeID: int32(i + 1)}
		if len(racks) > 0 {
			b.Rack = racks[i%len(racks)]
		}
		out = append(out, b)
	}
	return out
}

func spread(m map[int32]int) (lo, hi int) {
	vals := slices.Collect(maps.Values(m))
	return slices.Min(vals), slices.Max(vals)
}

func TestPlaceEvenLeadersAndReplicas(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 6} {
		for _, rf := range []int{1, 2, 3} {
			if rf > n {
				continue
			}
			for _, k := range []int{1, 2, 7} {
				for _, start := range []int{0, 4} {
					t.Run(fmt.Sprintf("n%d_rf%d_k%d_start%d", n, rf, k, start), func(t *testing.T) {
						as, err := Place(brokersN(n), n*k, rf, start)
						if err != nil {
							t.Fatal(err)
						}
						leaders, replicas := map[int32]int{}, map[int32]int{}
						for _, reps := range as {
							if len(reps) != rf {
								t.Fatalf("replicas %v, want %d", reps, rf)
							}
							for i, r := range reps {
								if slices.Contains(reps[:i], r) {
									t.Fatalf("duplicate replica in %v", reps)
								}
								replicas[r]++
							}
							leaders[reps[0]]++
						}
						if lo, hi := spread(leaders); len(leaders) != n || lo != k || hi != k {
							t.Fatalf("leaders per broker %v, want %d each", leaders, k)
						}
						if lo, hi := spread(replicas); lo != rf*k || hi != rf*k {
							t.Fatalf("replicas per broker %v, want %d each", replicas, rf*k)
						}
					})
				}
			}
		}
	}
}

func TestPlaceLeadersDifferByAtMostOne(t *testing.T) {
	for parts := 1; parts <= 20; parts++ {
		as, err := Place(brokersN(4, "x", "y"), parts, 2, parts*3)
		if err != nil {
			t.Fatal(err)
		}
		leaders := map[int32]int{1: 0, 2: 0, 3: 0, 4: 0}
		for _, reps := range as {
			leaders[reps[0]]++
		}
		if lo, hi := spread(leaders); hi-lo > 1 {
			t.Fatalf("%d partitions: leaders %v", parts, leaders)
		}
	}
}

func TestPlaceRackAware(t *testing.T) {
	cases := []struct {
		name    string
		brokers []BrokerInfo
		rf      int
	}{
		{"3 racks x 2", brokersN(6, "a", "b", "c"), 3},
		{"2 racks x 3, rf 3", brokersN(6, "a", "b"), 3},
		{"uneven racks", []BrokerInfo{{1, "a", false}, {2, "a", false}, {3, "a", false}, {4, "b", false}, {5, "c", false}}, 3},
		{"3 racks x 3, rf 2", brokersN(9, "a", "b", "c"), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rackOf := map[int32]string{}
			racks := map[string]bool{}
			for _, b := range tc.brokers {
				rackOf[b.NodeID] = b.Rack
				racks[b.Rack] = true
			}
			parts := len(tc.brokers) * 4
			as, err := Place(tc.brokers, parts, tc.rf, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := min(tc.rf, len(racks))
			leaders, replicas := map[int32]int{}, map[int32]int{}
			for _, reps := range as {
				used := map[string]bool{}
				for _, r := range reps {
					used[rackOf[r]] = true
					replicas[r]++
				}
				if len(used) != want {
					t.Fatalf("replicas %v span %d racks, want %d", reps, len(used), want)
				}
				leaders[reps[0]]++
			}
			if lo, hi := spread(leaders); hi-lo > 1 || len(leaders) != len(tc.brokers) {
				t.Fatalf("leaders %v", leaders)
			}
			lo, hi := spread(replicas)
			t.Logf("replicas per broker %v (spread %d..%d)", replicas, lo, hi)
			if tc.name != "uneven racks" && hi-lo > tc.rf {
				t.Fatalf("replicas per broker %v too uneven", replicas)
			}
		})
	}
}

func TestPlaceDeterministicAndSkipsFenced(t *testing.T) {
	bs := brokersN(5, "a", "b")
	bs[2].Fenced = true
	a, err := Place(bs, 10, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	b, err := Place(rev, 10, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatalf("placement depends on input order:\n%v\n%v", a, b)
	}
	for _, reps := range a {
		if slices.Contains(reps, bs[2].NodeID) {
			t.Fatalf("fenced broker placed: %v", reps)
		}
	}
}

func TestPlaceErrors(t *testing.T) {
	if _, err := Place(brokersN(2), 3, 3, 0); !errors.Is(err, ErrNotEnoughBrokers) {
		t.Fatalf("rf > brokers: %v", err)
	}
	if _, err := Place(nil, 1, 1, 0); !errors.Is(err, ErrNotEnoughBrokers) {
		t.Fatalf("no brokers: %v", err)
	}
	for _, args := range [][3]int{{0, 1, 0}, {1, 0, 0}, {1, 1, -1}} {
		if _, err := Place(brokersN(3), args[0], args[1], args[2]); !errors.Is(err, ErrInvalidAssignment) {
			t.Fatalf("Place%v: %v", args, err)
		}
	}
}
