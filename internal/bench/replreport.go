package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// ReplReport is the outcome of one RunReplication. Throughputs are decimal
// (1 MB = 1e6 bytes, 1 GB = 1e9 bytes); CPU is user+system time from
// /proc/<pid>/stat (10 ms ticks) or, for this process, getrusage.
type ReplReport struct {
	Command  string       `json:"command,omitempty"`
	Started  time.Time    `json:"started"`
	Seconds  float64      `json:"seconds"`
	Machine  Machine      `json:"machine"`
	LoadAvg  [2]string    `json:"loadavg"` // /proc/loadavg at the start and the end
	Settings ReplSettings `json:"settings"`

	CatchUp  CatchUpResult  `json:"catch_up"`
	AcksAll  []Throughput   `json:"acks_all"`
	Latency  []LatencyPoint `json:"latency"`
	Failover FailoverResult `json:"failover"`
	Goals    []Goal         `json:"goals"`
}

// ReplSettings are the ReplConfig values that shape the figures.
type ReplSettings struct {
	BatchBytes      int      `json:"batch_bytes"`
	ValueBytes      int      `json:"value_bytes"`
	ProduceWindow   int      `json:"produce_window"`
	CatchUpBytes    int64    `json:"catch_up_bytes"`
	CatchUpRounds   int      `json:"catch_up_rounds"`
	AcksAllBytes    int64    `json:"acks_all_bytes"`
	AcksAllRounds   int      `json:"acks_all_rounds"`
	KgoBytes        int64    `json:"kgo_bytes"`
	LatencyDuration string   `json:"latency_duration"`
	LatencyWindow   int      `json:"latency_window"`
	FailoverSamples int      `json:"failover_samples"`
	BrokerArgs      []string `json:"broker_args,omitempty"` // empty: broker defaults
}

// CatchUpRound is one frozen follower catching up.
type CatchUpRound struct {
	Leader     int32 `json:"leader"`
	Follower   int32 `json:"follower"`
	Controller int32 `json:"controller"`
	// Bytes is what was produced while the follower was frozen, and so what
	// it fetched; SendfileBytes the leader's counter of bytes served to
	// followers by sendfile over the catch-up window: Bytes less the
	// response a parked fetch of the follower got before the window, which
	// waited in its socket buffer. Leader CPU per GB is over SendfileBytes.
	Bytes         int64   `json:"bytes"`
	SendfileBytes int64   `json:"sendfile_bytes"`
	Seconds       float64 `json:"seconds"` // SIGCONT to the follower's log end equal to the leader's
	MBps          float64 `json:"mb_per_s"`
	// LeaderCPUSeconds and FollowerCPUSeconds are over the same window.
	LeaderCPUSeconds   float64 `json:"leader_cpu_s"`
	FollowerCPUSeconds float64 `json:"follower_cpu_s"`
	FrozenSeconds      float64 `json:"frozen_s"`
	// FlushSeconds is the fdatasync of the load on all three brokers,
	// before the follower resumed (not part of Seconds).
	FlushSeconds     float64 `json:"flush_s"`
	OutOfISRAtResume bool    `json:"out_of_isr_at_resume"`
}

// CatchUpRaw is one round of the raw baseline: a peer process sendfiles the
// round's segment file over loopback; this process writes what it reads
// into a file.
type CatchUpRaw struct {
	Bytes              int64   `json:"bytes"`
	Seconds            float64 `json:"seconds"`
	MBps               float64 `json:"mb_per_s"`
	SenderCPUSeconds   float64 `json:"sender_cpu_s"`
	ReceiverCPUSeconds float64 `json:"receiver_cpu_s"`
}

// CatchUpResult merges the catch-up rounds: MB/s are medians, CPU per GB
// the ratio of the sums.
type CatchUpResult struct {
	Rounds              []CatchUpRound `json:"rounds"`
	Raw                 []CatchUpRaw   `json:"raw"`
	MBps                float64        `json:"mb_per_s"`
	RawMBps             float64        `json:"raw_mb_per_s"`
	PctOfRaw            float64        `json:"pct_of_raw"`
	LeaderCPUPerGB      float64        `json:"leader_cpu_s_per_gb"`
	RawSenderCPUPerGB   float64        `json:"raw_sender_cpu_s_per_gb"`
	CPURatio            float64        `json:"leader_cpu_ratio_to_raw"`
	FollowerCPUPerGB    float64        `json:"follower_cpu_s_per_gb"`
	RawReceiverCPUPerGB float64        `json:"raw_receiver_cpu_s_per_gb"`
}

func (c *CatchUpResult) summarize() {
	var mb, rmb []float64
	var b, served, rb int64
	var lcpu, fcpu, scpu, rcpu float64
	for _, r := range c.Rounds {
		mb = append(mb, r.MBps)
		b += r.Bytes
		served += r.SendfileBytes
		lcpu += r.LeaderCPUSeconds
		fcpu += r.FollowerCPUSeconds
	}
	for _, r := range c.Raw {
		rmb = append(rmb, r.MBps)
		rb += r.Bytes
		scpu += r.SenderCPUSeconds
		rcpu += r.ReceiverCPUSeconds
	}
	c.MBps, c.RawMBps = median(mb), median(rmb)
	if c.RawMBps > 0 {
		c.PctOfRaw = 100 * c.MBps / c.RawMBps
	}
	if gb := float64(served) / 1e9; gb > 0 {
		c.LeaderCPUPerGB = lcpu / gb
	}
	if gb := float64(b) / 1e9; gb > 0 {
		c.FollowerCPUPerGB = fcpu / gb
	}
	if gb := float64(rb) / 1e9; gb > 0 {
		c.RawSenderCPUPerGB, c.RawReceiverCPUPerGB = scpu/gb, rcpu/gb
	}
	if c.RawSenderCPUPerGB > 0 {
		c.CPURatio = c.LeaderCPUPerGB / c.RawSenderCPUPerGB
	}
}

// Throughput is one produce path. MBps is the median round; bytes, records,
// seconds and CPU are sums over the rounds.
type Throughput struct {
	Name             string    `json:"name"`
	Bytes            int64     `json:"bytes"`
	Records          int64     `json:"records"`
	Seconds          float64   `json:"seconds"`
	MBps             float64   `json:"mb_per_s"`
	RecordsPerSec    float64   `json:"records_per_s"`
	SamplesMBps      []float64 `json:"samples_mb_per_s"`
	ServerCPUSeconds float64   `json:"server_cpu_s"`
	ServerCPUPerGB   float64   `json:"server_cpu_s_per_gb"`
	ClientCPUSeconds float64   `json:"client_cpu_s,omitempty"`
	ClientCPUPerGB   float64   `json:"client_cpu_s_per_gb,omitempty"`
	Ack              string    `json:"ack"` // what an acknowledgement means
	Note             string    `json:"note,omitempty"`
}

func throughputOf(name string, ss []sample, records int64) Throughput {
	r := resultOf(name, KindBroker, ss)
	t := Throughput{Name: name, Bytes: r.Bytes, Records: records, Seconds: r.Seconds, MBps: r.MBps,
		SamplesMBps: r.SamplesMBps, ServerCPUSeconds: r.ServerCPUSeconds, ClientCPUSeconds: r.ClientCPUSeconds}
	if r.Bytes > 0 {
		t.RecordsPerSec = r.MBps * 1e6 * float64(records) / float64(r.Bytes)
		gb := float64(r.Bytes) / 1e9
		t.ServerCPUPerGB, t.ClientCPUPerGB = r.ServerCPUSeconds/gb, r.ClientCPUSeconds/gb
	}
	return t
}

// LatencyPoint is one offered load of the acks=all latency curve.
type LatencyPoint struct {
	Fraction        float64 `json:"fraction_of_max"`
	TargetMBps      float64 `json:"target_mb_per_s"`
	AchievedMBps    float64 `json:"achieved_mb_per_s"`
	IntervalMicros  float64 `json:"interval_us"`
	BatchBytes      int     `json:"batch_bytes"`
	RecordsPerBatch int     `json:"records_per_batch"`
	Requests        int     `json:"requests"`
	P50Millis       float64 `json:"p50_ms"`
	P90Millis       float64 `json:"p90_ms"`
	P99Millis       float64 `json:"p99_ms"`
	P999Millis      float64 `json:"p999_ms"`
	MaxMillis       float64 `json:"max_ms"`
}

// FailoverSample is one SIGKILL of a partition leader.
type FailoverSample struct {
	Partition   int32 `json:"partition"`
	Victim      int32 `json:"victim"`
	Controller  int32 `json:"controller"`
	Successor   int32 `json:"successor"`
	EpochBefore int32 `json:"leader_epoch_before"`
	EpochAfter  int32 `json:"leader_epoch_after"`
	// FirstAckMillis is SIGKILL to the first acknowledged acks=all write on
	// the successor. AcceptedSendMillis is when that write was sent and
	// LastRefusalMillis when the successor last refused one (NOT_LEADER and
	// the like): leadership moved between the two.
	FirstAckMillis     float64 `json:"first_ack_ms"`
	AcceptedSendMillis float64 `json:"accepted_send_ms"`
	LastRefusalMillis  float64 `json:"last_refusal_ms"`
	Probes             int     `json:"probes"`
}

// FailoverResult summarizes the samples (nearest-rank percentiles: with
// fewer than 100 samples p99 is the largest).
type FailoverResult struct {
	Samples   []FailoverSample `json:"samples"`
	P50Millis float64          `json:"p50_ms"`
	P99Millis float64          `json:"p99_ms"`
	MinMillis float64          `json:"min_ms"`
	MaxMillis float64          `json:"max_ms"`
}

func (f *FailoverResult) summarize() {
	var v []float64
	for _, s := range f.Samples {
		v = append(v, s.FirstAckMillis)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return
	}
	f.P50Millis, f.P99Millis, f.MinMillis, f.MaxMillis = percentile(v, 50), percentile(v, 99), v[0], v[len(v)-1]
}

// Goal is one of the replication issue's goals, judged on this run.
type Goal struct {
	Name   string `json:"name"`
	Figure string `json:"figure"`
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

// acksAllRaw returns the raw client's acks=all MB/s.
func (rep *ReplReport) acksAllRaw() (float64, bool) {
	return rep.throughput(ProduceAllRaw)
}

func (rep *ReplReport) throughput(name string) (float64, bool) {
	for _, t := range rep.AcksAll {
		if t.Name == name {
			return t.MBps, true
		}
	}
	return 0, false
}

// judge fills Goals from what was measured.
func (rep *ReplReport) judge() {
	rep.Goals = nil
	add := func(name, figure, target string, met bool) {
		rep.Goals = append(rep.Goals, Goal{Name: name, Figure: figure, Target: target, Met: met})
	}
	if c := rep.CatchUp; len(c.Rounds) > 0 && c.RawMBps > 0 {
		add("follower catch-up throughput", fmt.Sprintf("%.0f MB/s = %.0f%% of raw sendfile into a file (%.0f MB/s)", c.MBps, c.PctOfRaw, c.RawMBps),
			">= 80% of raw", c.PctOfRaw >= 80)
		add("leader CPU per GB served to followers", fmt.Sprintf("%.3f CPU-s/GB = %.2f x raw sender (%.3f)", c.LeaderCPUPerGB, c.CPURatio, c.RawSenderCPUPerGB),
			"<= 1.2 x raw", c.CPURatio > 0 && c.CPURatio <= 1.2)
	}
	sl, okS := rep.throughput(ProduceAllRaw)
	js, okJ := rep.throughput(NATSJetStreamR3)
	if okS && okJ && js > 0 {
		add("acks=all RF=3 throughput vs JetStream R3", fmt.Sprintf("%.0f MB/s vs %.1f MB/s = %.1f x", sl, js, sl/js), ">= 3 x", sl >= 3*js)
	}
	for _, p := range rep.Latency {
		if p.Fraction == 0.5 {
			add("acks=all p99 latency at half the throughput", fmt.Sprintf("p50 %.2f ms, p99 %.2f ms at %.0f MB/s", p.P50Millis, p.P99Millis, p.AchievedMBps),
				"p99 <= 5 ms", p.P99Millis <= 5)
		}
	}
	if f := rep.Failover; len(f.Samples) > 0 {
		add("kill -9 of a leader to the first acknowledged write", fmt.Sprintf("p50 %.0f ms, p99 %.0f ms over %d samples", f.P50Millis, f.P99Millis, len(f.Samples)),
			"p99 <= 2 s", f.P99Millis <= 2000)
	}
}

// WriteJSON writes the report as indented JSON to path.
func (rep *ReplReport) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: json: %w", err)
	}
	return nil
}

// WriteTable prints the figures as aligned text tables.
func (rep *ReplReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if c := rep.CatchUp; len(c.Rounds) > 0 {
		fmt.Fprintf(tw, "catch-up\tround MB/s\tmedian MB/s\tCPU-s/GB sender\tCPU-s/GB receiver\t\n")
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.3f (leader)\t%.3f (follower)\t\n", "follower catch-up", joinf(c.Rounds, func(r CatchUpRound) float64 { return r.MBps }), c.MBps, c.LeaderCPUPerGB, c.FollowerCPUPerGB)
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.3f (peer)\t%.3f (this process)\t\n", RawSendfileToFile, joinf(c.Raw, func(r CatchUpRaw) float64 { return r.MBps }), c.RawMBps, c.RawSenderCPUPerGB, c.RawReceiverCPUPerGB)
		fmt.Fprintf(tw, "%s\t\t%.0f%% of raw\t%.2f x raw\t\t\n", "ratio", c.PctOfRaw, c.CPURatio)
		fmt.Fprintf(tw, "\t\t\t\t\t\n")
	}
	if len(rep.AcksAll) > 0 {
		fmt.Fprintf(tw, "acks=all, RF=3\tround MB/s\tmedian MB/s\trecords/s\tCPU-s/GB servers\tCPU-s/GB client\t\n")
		for _, t := range rep.AcksAll {
			client := "-"
			if t.ClientCPUPerGB > 0 {
				client = fmt.Sprintf("%.3f", t.ClientCPUPerGB)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.0f\t%.3f\t%s\t\n", t.Name, joinf(t.SamplesMBps, func(v float64) float64 { return v }), t.MBps, t.RecordsPerSec, t.ServerCPUPerGB, client)
		}
		fmt.Fprintf(tw, "\t\t\t\t\t\t\n")
	}
	if len(rep.Latency) > 0 {
		fmt.Fprintf(tw, "acks=all latency\toffered MB/s\tachieved MB/s\trequests\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t\n")
		for _, p := range rep.Latency {
			fmt.Fprintf(tw, "%.0f%% of max, %d B batches\t%.0f\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", 100*p.Fraction, p.BatchBytes,
				p.TargetMBps, p.AchievedMBps, p.Requests, p.P50Millis, p.P90Millis, p.P99Millis, p.P999Millis, p.MaxMillis)
		}
		fmt.Fprintf(tw, "\t\t\t\t\t\t\t\t\t\n")
	}
	if f := rep.Failover; len(f.Samples) > 0 {
		fmt.Fprintf(tw, "kill -9 of a leader\tvictim\tsuccessor\tlast refusal ms\taccepted write sent ms\tfirst ack ms\t\n")
		for i, s := range f.Samples {
			fmt.Fprintf(tw, "sample %d (%s-%d)\t%d\t%d\t%.0f\t%.0f\t%.0f\t\n", i+1, failoverTopic, s.Partition, s.Victim, s.Successor,
				s.LastRefusalMillis, s.AcceptedSendMillis, s.FirstAckMillis)
		}
		fmt.Fprintf(tw, "p50 / p99 (nearest rank)\t\t\t\t\t%.0f / %.0f\t\n", f.P50Millis, f.P99Millis)
		fmt.Fprintf(tw, "\t\t\t\t\t\t\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range rep.Goals {
		verdict := "MISSED"
		if g.Met {
			verdict = "met"
		}
		fmt.Fprintf(w, "goal %-50s %s (%s): %s\n", g.Name+":", g.Figure, g.Target, verdict)
	}
	m := rep.Machine
	brokerArgs := "broker defaults"
	if len(rep.Settings.BrokerArgs) > 0 {
		brokerArgs = "broker args " + strings.Join(rep.Settings.BrokerArgs, " ")
	}
	_, err := fmt.Fprintf(w, "\n%d CPUs (%s), kernel %s, %s RAM, %s; %s; MB = 1e6 bytes; %.0f s; load average %s at start, %s at end\n",
		m.NumCPU, m.CPUModel, m.Kernel, m.MemTotal, m.GoVersion, brokerArgs, rep.Seconds, rep.LoadAvg[0], rep.LoadAvg[1])
	return err
}

// joinf renders f of each element with no decimals, space-separated.
func joinf[T any](v []T, f func(T) float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", f(x))
	}
	return strings.Join(s, " ")
}
