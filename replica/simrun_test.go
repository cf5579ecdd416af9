package replica

import (
	"cmp"
	"flag"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	simSeed      = flag.Uint64("sim.seed", 0, "TestSim: replay only this schedule seed (with -v, trace it)")
	simSchedules = flag.Int("sim.schedules", 0, "TestSim and TestSimLong: number of schedules (TestSimLong is skipped without it)")
	simBase      = flag.Uint64("sim.base", 1, "first schedule seed")
	simSteps     = flag.Int("sim.steps", simDefaultSteps, "steps per schedule")
	simLossOnly  = flag.Bool("sim.lossonly", false, "leave out invariant 1's check on ISR members (as TestSimBreaks' second pass does)")
	simKeepGoing = flag.Bool("sim.keepgoing", false, "TestSimLong: run every schedule, then list the failing seeds")
	simBreak     = flag.String("sim.break", "", "replay with one rule broken: hwIgnoresISR, truncateToHW or expandBeforeCatchUp")
)

const simDefaultSteps = 600

// simDefaultSchedules is what `go test ./replica` runs, with or without
// -race (about 20s of two cores under -race, 4s without).
const simDefaultSchedules = 10000

var breakSwitches = []struct {
	name string
	brk  breaks
}{
	{"hwIgnoresISR", breaks{hwIgnoresISR: true}},
	{"truncateToHW", breaks{truncateToHW: true}},
	{"expandBeforeCatchUp", breaks{expandBeforeCatchUp: true}},
}

func breakNamed(t testing.TB, name string) breaks {
	if name == "" {
		return breaks{}
	}
	for _, b := range breakSwitches {
		if strings.EqualFold(b.name, name) {
			return b.brk
		}
	}
	t.Fatalf("unknown -sim.break %q", name)
	return breaks{}
}

func replayCommand(seed uint64, steps int, brk string, lossOnly bool) string {
	cmd := fmt.Sprintf("go test ./replica -run 'TestSim$' -sim.seed=%d", seed)
	if steps != simDefaultSteps {
		cmd += fmt.Sprintf(" -sim.steps=%d", steps)
	}
	if brk != "" {
		cmd += " -sim.break=" + brk
	}
	if lossOnly {
		cmd += " -sim.lossonly"
	}
	return cmd + " -v"
}

// simFailure is a schedule that broke an invariant.
type simFailure struct {
	seed      uint64
	violation string
	params    string
	dump      string
}

// runSchedules runs seeds [base, base+n) on GOMAXPROCS workers. With
// stopEarly it stops handing out seeds once one fails. It returns the
// failure with the smallest seed among those run, and summed statistics.
func runSchedules(base uint64, n, steps int, brk breaks, stopEarly bool) (*simFailure, simStats) {
	return runSchedulesOpt(base, n, steps, brk, stopEarly, false)
}

func runSchedulesOpt(base uint64, n, steps int, brk breaks, stopEarly, lossOnly bool) (*simFailure, simStats) {
	first, _, total := runAll(base, n, steps, brk, stopEarly, lossOnly)
	return first, total
}

// runAll is runSchedulesOpt that also returns every failure, ordered by seed.
func runAll(base uint64, n, steps int, brk breaks, stopEarly, lossOnly bool) (*simFailure, []simFailure, simStats) {
	var (
		next   atomic.Uint64
		failed atomic.Bool
		mu     sync.Mutex
		first  *simFailure
		all    []simFailure
		total  simStats
		wg     sync.WaitGroup
	)
	workers := min(runtime.GOMAXPROCS(0), n)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local simStats
			for {
				i := next.Add(1) - 1
				if i >= uint64(n) || stopEarly && failed.Load() {
					break
				}
				seed := base + i
				w := newWorld(seed, steps, brk)
				w.lossOnly = lossOnly
				if v := w.run(); v != "" {
					failed.Store(true)
					f := simFailure{seed: seed, violation: v, params: w.p.String(), dump: w.dump()}
					mu.Lock()
					if first == nil || seed < first.seed {
						first = &f
					}
					all = append(all, f)
					mu.Unlock()
				}
				local.add(w.stats)
			}
			mu.Lock()
			total.add(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b simFailure) int { return cmp.Compare(a.seed, b.seed) })
	return first, all, total
}

// TestSim runs the default batch of schedules (or replays -sim.seed) and
// fails on the first invariant violation, printing how to replay it.
func TestSim(t *testing.T) {
	brkName := *simBreak
	brk := breakNamed(t, brkName)
	if *simSeed != 0 {
		w := newWorld(*simSeed, *simSteps, brk)
		w.lossOnly = *simLossOnly
		if testing.Verbose() {
			w.trace = t.Logf
		}
		t.Logf("seed %d: %v", *simSeed, w.p)
		v := w.run()
		t.Logf("%v", w.stats)
		if v != "" {
			t.Fatalf("seed %d: %s\n%s", *simSeed, v, w.dump())
		}
		return
	}
	n := *simSchedules
	if n == 0 {
		n = simDefaultSchedules
	}
	start := time.Now()
	f, st := runSchedulesOpt(*simBase, n, *simSteps, brk, true, *simLossOnly)
	el := time.Since(start)
	t.Logf("%d schedules in %v (%.0f/s): %v", st.schedules, el.Round(time.Millisecond), float64(st.schedules)/el.Seconds(), st)
	if f != nil {
		t.Fatalf("seed %d (%s): %s\n%s\nreplay: %s", f.seed, f.params, f.violation, f.dump, replayCommand(f.seed, *simSteps, brkName, *simLossOnly))
	}
}

// TestSimDeterministic replays schedules and compares their traces: a seed
// must name one schedule (no map order, clock or goroutine leaking in).
func TestSimDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		var sums [2]uint64
		var results [2]string
		for i := range sums {
			h := fnv.New64a()
			w := newWorld(seed, simDefaultSteps, breaks{})
			w.trace = func(format string, args ...any) { fmt.Fprintf(h, format+"\n", args...) }
			results[i] = w.run() + w.stats.String() + w.dump()
			sums[i] = h.Sum64()
		}
		if sums[0] != sums[1] || results[0] != results[1] {
			t.Fatalf("seed %d: two runs differ:\n%s\n%s", seed, results[0], results[1])
		}
	}
}

// TestSimLong is the long run behind `make sim`: -sim.schedules=N schedules
// from -sim.base, reporting schedules per second. It stops at the first
// failure, or with -sim.keepgoing lists every failing seed at the end.
func TestSimLong(t *testing.T) {
	if *simSchedules == 0 {
		t.Skip("run with -sim.schedules=N")
	}
	brk := breakNamed(t, *simBreak)
	const chunk = 100000
	start := time.Now()
	var (
		total    simStats
		failures []simFailure
	)
	for done := 0; done < *simSchedules; done += chunk {
		n := min(chunk, *simSchedules-done)
		f, all, st := runAll(*simBase+uint64(done), n, *simSteps, brk, !*simKeepGoing, *simLossOnly)
		total.add(st)
		failures = append(failures, all...)
		el := time.Since(start)
		fmt.Printf("sim: %d schedules in %v: %.0f schedules/s, %d failed\n", total.schedules, el.Round(time.Second),
			float64(total.schedules)/el.Seconds(), len(failures))
		if f != nil && !*simKeepGoing {
			t.Fatalf("seed %d (%s): %s\n%s\nreplay: %s", f.seed, f.params, f.violation, f.dump,
				replayCommand(f.seed, *simSteps, *simBreak, *simLossOnly))
		}
	}
	el := time.Since(start)
	t.Logf("%d schedules in %v: %.0f schedules/s, %d workers\n%v", total.schedules, el.Round(time.Millisecond),
		float64(total.schedules)/el.Seconds(), runtime.GOMAXPROCS(0), total)
	for _, f := range failures {
		t.Errorf("seed %d (%s): %s\nreplay: %s", f.seed, f.params, f.violation, replayCommand(f.seed, *simSteps, *simBreak, *simLossOnly))
	}
}

// TestSimBreaks shows that the simulator bites: with each rule broken on
// every replica, some schedule among the first simBreakSeeds violates an
// invariant; and, with the check on ISR members left out, some schedule
// actually loses data (an acknowledged write, or data a consumer could
// have read).
func TestSimBreaks(t *testing.T) {
	const simBreakSeeds = 2000
	for _, b := range breakSwitches {
		t.Run(b.name, func(t *testing.T) {
			for _, lossOnly := range []bool{false, true} {
				f, st := runSchedulesOpt(1, simBreakSeeds, simDefaultSteps, b.brk, true, lossOnly)
				if f == nil {
					t.Fatalf("no violation (lossOnly %v) in %d schedules with %s broken: %v", lossOnly, simBreakSeeds, b.name, st)
				}
				t.Logf("lossOnly %v: seed %d: %s\nreplay: %s", lossOnly, f.seed, f.violation,
					replayCommand(f.seed, simDefaultSteps, b.name, lossOnly))
			}
		})
	}
}
