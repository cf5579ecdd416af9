package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A /v1/cluster document as node.ClusterStatus encodes it (fields the
// benchmark does not read included, to show they are ignored).
const clusterDoc = `{"cluster_id":"x","node_id":2,"controller_id":1,"term":3,"applied_index":40,
"brokers":[{"id":1,"epoch":5,"fenced":false},{"id":2,"epoch":6,"fenced":false},{"id":3,"epoch":7,"fenced":true}],
"led_partitions":[{"topic":"t","partition":0,"leader_epoch":4,"log_end_offset":100,"high_watermark":90,"isr":[2,1,3],
 "followers":[{"replica":3,"log_end_offset":100,"in_isr":true,"lag_offsets":0,"lag_ms":0},
              {"replica":1,"log_end_offset":90,"in_isr":true,"lag_offsets":10,"lag_ms":5}]}]}`

func TestParseClusterStatus(t *testing.T) {
	st, err := parseClusterStatus([]byte(clusterDoc))
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != 2 || st.ControllerID != 1 || st.unfenced() != 2 {
		t.Fatalf("parseClusterStatus = node %d controller %d unfenced %d, want 2 1 2", st.NodeID, st.ControllerID, st.unfenced())
	}
	lp := st.Led[0]
	if leo, ok := lp.follower(1); !ok || leo != 90 {
		t.Fatalf("follower(1) = %d %v, want 90 true", leo, ok)
	}
	if _, ok := lp.follower(2); ok {
		t.Fatal("the leader is not its own follower")
	}
	if got := lp.followers(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("followers() = %v, want [1 3]", got)
	}
	for _, bad := range []string{"", "{", `{"node_id":0}`, `{"node_id":"two"}`} {
		if _, err := parseClusterStatus([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("parseClusterStatus(%q) = %v, want ErrProtocol", bad, err)
		}
	}
}

func TestLeaderOfAndFullISR(t *testing.T) {
	st, err := parseClusterStatus([]byte(clusterDoc))
	if err != nil {
		t.Fatal(err)
	}
	// A deposed leader that still lists the partition in an older epoch.
	old := clusterStatus{NodeID: 1, Led: []ledPartition{{Topic: "t", LeaderEpoch: 3, LogEndOffset: 100, ISR: []int32{1, 2, 3}}}}
	sts := []clusterStatus{old, st}
	id, lp, ok := leaderOf(sts, "t", 0)
	if !ok || id != 2 || lp.LeaderEpoch != 4 {
		t.Fatalf("leaderOf = %d epoch %d %v, want 2 epoch 4", id, lp.LeaderEpoch, ok)
	}
	if _, _, ok := leaderOf(sts, "t", 1); ok {
		t.Fatal("leaderOf found a partition nobody leads")
	}
	if ok, why := fullISR(sts, "t", 1); ok || !strings.Contains(why, "follower 1 at 90") {
		t.Fatalf("fullISR = %v %q, want false: follower 1 behind", ok, why)
	}
	sts[1].Led[0].Followers[1].LogEndOffset = 100
	if ok, why := fullISR(sts, "t", 1); !ok {
		t.Fatalf("fullISR = false (%s), want true", why)
	}
	sts[1].Led[0].ISR = []int32{2, 3}
	if ok, _ := fullISR(sts, "t", 1); ok {
		t.Fatal("fullISR true with two of three in the ISR")
	}
}

func TestParseNATSResult(t *testing.T) {
	const good = "nats-bench: result msgs=200000 size=1024 seconds=5.406 msgs_per_s=36998 mb_per_s=37.9 server_cpu_s=4.93"
	tests := []struct {
		name string
		out  string
		want NATSResult
		err  bool
	}{
		{name: "after the bench output", out: "NATS JetStream asynchronous publisher stats: 36,998 msgs/sec ~ 36 MiB/sec\n\n" + good + "\n",
			want: NATSResult{Msgs: 200000, Size: 1024, Seconds: 5.406, MsgsPerSec: 36998, MBps: 37.9, ServerCPUSeconds: 4.93}},
		{name: "no result line", out: "nats-bench: cluster not ready\n", err: true},
		{name: "empty", out: "", err: true},
		{name: "missing key", out: strings.Replace(good, " server_cpu_s=4.93", "", 1), err: true},
		{name: "not a number", out: strings.Replace(good, "msgs_per_s=36998", "msgs_per_s=fast", 1), err: true},
		{name: "no messages", out: strings.Replace(good, "msgs=200000", "msgs=0", 1), err: true},
		{name: "bare word", out: good + " oops", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNATSResult([]byte(tc.out))
			if tc.err {
				if !errors.Is(err, ErrNoNATSResult) {
					t.Fatalf("ParseNATSResult(%q) = %+v, %v, want ErrNoNATSResult", tc.out, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseNATSResult(%q) = %+v, %v, want %+v", tc.out, got, err, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}, {0, 1}} {
		if got := percentile(v, tc.p); got != tc.want {
			t.Errorf("percentile(1..10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}
	pt := latencyPointOf(lat, 1e6, 1000, 2*time.Second)
	if pt.P50Millis != 2 || pt.P99Millis != 10 || pt.MaxMillis != 10 || pt.AchievedMBps != 2 || pt.Requests != 4 {
		t.Fatalf("latencyPointOf = %+v", pt)
	}
}

func TestReplConfigValidate(t *testing.T) {
	c := DefaultReplConfig()
	c.Binary = "/bin/sluice"
	if err := c.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*ReplConfig){
		"no binary":         func(c *ReplConfig) { c.Binary = "" },
		"batch too big":     func(c *ReplConfig) { c.BatchBytes = 2 << 20 },
		"fraction 0":        func(c *ReplConfig) { c.LatencyFractions = []float64{0} },
		"fraction above 1":  func(c *ReplConfig) { c.LatencyFractions = []float64{1.5} },
		"no acks=all round": func(c *ReplConfig) { c.AcksAllRounds = 0 },
		"nats without msgs": func(c *ReplConfig) { c.NATSScript, c.NATSMsgs = "x.sh", 0 },
		"no timeout":        func(c *ReplConfig) { c.PhaseTimeout = 0 },
	} {
		c := DefaultReplConfig()
		c.Binary = "/bin/sluice"
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// testReplReport is a report with every section filled.
func testReplReport() *ReplReport {
	rep := &ReplReport{Started: time.Unix(1e9, 0), Machine: Machine{NumCPU: 2, CPUModel: "cpu <&>"}}
	rep.CatchUp = CatchUpResult{
		Rounds: []CatchUpRound{{Leader: 1, Follower: 2, Bytes: 1e9, SendfileBytes: 1e9, Seconds: 2, MBps: 500, LeaderCPUSeconds: 0.5, FollowerCPUSeconds: 1}},
		Raw:    []CatchUpRaw{{Bytes: 1e9, Seconds: 1.6, MBps: 625, SenderCPUSeconds: 0.2, ReceiverCPUSeconds: 1}},
	}
	rep.CatchUp.summarize()
	rep.AcksAll = []Throughput{{Name: ProduceAllRaw, MBps: 600, SamplesMBps: []float64{600}}, {Name: NATSJetStreamR3, MBps: 40, SamplesMBps: []float64{40}}}
	rep.Latency = []LatencyPoint{{Fraction: 0.25, AchievedMBps: 150, P50Millis: 2, P99Millis: 3}, {Fraction: 0.5, AchievedMBps: 300, P50Millis: 2.5, P99Millis: 4}}
	rep.Failover.Samples = []FailoverSample{{Victim: 2, Successor: 3, AcceptedSendMillis: 1700, FirstAckMillis: 1800}, {Victim: 3, Successor: 2, AcceptedSendMillis: 1900, FirstAckMillis: 2900}}
	rep.Failover.summarize()
	rep.judge()
	return rep
}

func TestReplReportJudgeAndOutputs(t *testing.T) {
	rep := testReplReport()
	if c := rep.CatchUp; c.PctOfRaw != 80 || c.LeaderCPUPerGB != 0.5 || c.CPURatio != 2.5 {
		t.Fatalf("catch-up summary = %+v", c)
	}
	if f := rep.Failover; f.P50Millis != 1800 || f.P99Millis != 2900 {
		t.Fatalf("failover summary = %+v", f)
	}
	met := map[string]bool{}
	for _, g := range rep.Goals {
		met[g.Name] = g.Met
	}
	want := map[string]bool{
		"follower catch-up throughput":                        true,  // 80% of raw
		"leader CPU per GB served to followers":               false, // 2.5 x raw
		"acks=all RF=3 throughput vs JetStream R3":            true,  // 15 x
		"acks=all p99 latency at half the throughput":         true,  // 4 ms
		"kill -9 of a leader to the first acknowledged write": false, // 2.9 s
	}
	if len(met) != len(want) {
		t.Fatalf("goals %v, want %v", met, want)
	}
	for k, v := range want {
		if met[k] != v {
			t.Errorf("goal %q met = %v, want %v", k, met[k], v)
		}
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"follower catch-up", "80% of raw", "MISSED", "2900", NATSJetStreamR3} {
		if !strings.Contains(tab.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tab.String())
		}
	}
	// The SVG is well-formed XML (the CPU model's <&> is escaped).
	d := xml.NewDecoder(bytes.NewReader(rep.SVG()))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG: %v", err)
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	// An empty report renders too.
	empty := &ReplReport{}
	empty.judge()
	if err := empty.WriteTable(io.Discard); err != nil || len(empty.SVG()) == 0 || len(empty.Goals) != 0 {
		t.Fatalf("empty report: %v, %d goals", err, len(empty.Goals))
	}
	b, _ := json.Marshal(rep)
	var back ReplReport
	if err := json.Unmarshal(b, &back); err != nil || back.Failover.P99Millis != 2900 {
		t.Fatalf("JSON round trip: %v %+v", err, back.Failover)
	}
}

// TestRunReplicationEndToEnd runs every phase but NATS with tiny sizes
// against a real three-broker cluster (about 20 s; skipped with -short).
func TestRunReplicationEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-broker cluster and kills a leader")
	}
	bin := buildSluice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := DefaultReplConfig()
	cfg.Binary = bin
	cfg.WorkDir = t.TempDir()
	cfg.BatchBytes = 64 << 10
	cfg.CatchUpBytes = 4 << 20
	cfg.CatchUpRounds = 1
	cfg.AcksAllBytes = 2 << 20
	cfg.AcksAllRounds = 1
	cfg.KgoBytes = 256 << 10
	cfg.LatencyFractions = []float64{0.2}
	cfg.LatencyDuration = 200 * time.Millisecond
	cfg.FailoverSamples = 1
	cfg.PhaseTimeout = 90 * time.Second
	rep, err := RunReplication(ctx, cfg)
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(cfg.WorkDir, "broker-*.log"))
		var tails []string
		for _, l := range logs {
			tails = append(tails, l+":\n"+logTail(l))
		}
		t.Fatalf("RunReplication: %v\n%s", err, strings.Join(tails, "\n"))
	}
	c := rep.CatchUp
	if len(c.Rounds) != 1 || len(c.Raw) != 1 || c.Rounds[0].Bytes < cfg.CatchUpBytes || c.Raw[0].Bytes != c.Rounds[0].Bytes ||
		c.MBps <= 0 || c.RawMBps <= 0 || c.Rounds[0].Follower == c.Rounds[0].Leader {
		t.Errorf("catch-up = %+v", c)
	}
	if len(rep.AcksAll) != 2 || rep.AcksAll[0].MBps <= 0 || rep.AcksAll[1].MBps <= 0 {
		t.Errorf("acks=all = %+v", rep.AcksAll)
	}
	if len(rep.Latency) != 1 || rep.Latency[0].Requests < 20 || rep.Latency[0].P99Millis <= 0 {
		t.Errorf("latency = %+v", rep.Latency)
	}
	if f := rep.Failover; len(f.Samples) != 1 || f.Samples[0].FirstAckMillis <= 0 || f.Samples[0].Successor == f.Samples[0].Victim ||
		f.Samples[0].EpochAfter <= f.Samples[0].EpochBefore {
		t.Errorf("failover = %+v", f)
	}
}
