package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Kinds of Result.
const (
	KindBroker = "broker" // bytes moved through a sluice broker process
	KindRaw    = "raw"    // the same movement with bare system calls, in this process
)

// Result is one measured path. Throughputs are decimal: 1 MB = 1e6 bytes,
// 1 GB = 1e9 bytes.
type Result struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Bytes   int64   `json:"bytes"` // record bytes (whole batches) or file bytes moved
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"`
	// ServerCPUSeconds is the user+system CPU of the server process during
	// the phase (/proc/<pid>/stat, 10 ms ticks): the broker, or for a raw
	// baseline the raw peer process (sender for fetch, receiver for
	// produce). Zero for the in-process file write.
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	ServerCPUPerGB   float64 `json:"server_cpu_s_per_gb,omitempty"`
	// ClientCPUSeconds is this process's CPU during the phase (the
	// benchmark client; for the file write, the writer).
	ClientCPUSeconds float64 `json:"client_cpu_s"`
	// TotalCPUPerGB is server plus client CPU seconds per GB moved.
	TotalCPUPerGB float64 `json:"total_cpu_s_per_gb"`
	Conns         int     `json:"conns,omitempty"`
	// SamplesMBps holds each round's MB/s; MBps is their median, while
	// Bytes, Seconds and the CPU figures are sums over the rounds.
	SamplesMBps []float64 `json:"samples_mb_per_s,omitempty"`
	// Baseline names the raw Result this path is compared with, and
	// PctOfBaseline is MBps as a percentage of that result's MBps.
	Baseline      string  `json:"baseline,omitempty"`
	PctOfBaseline float64 `json:"pct_of_baseline,omitempty"`
	// GoalPctOfBaseline is the share of the baseline this path aims for
	// (0: none).
	GoalPctOfBaseline float64 `json:"goal_pct_of_baseline,omitempty"`
	Note              string  `json:"note,omitempty"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	Kernel     string `json:"kernel"`
	MemTotal   string `json:"mem_total"`
	GoVersion  string `json:"go_version"`
}

// Report is the outcome of one Run.
type Report struct {
	Command  string    `json:"command,omitempty"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	// LoadAvg is /proc/loadavg at the start and the end: other work on the
	// machine shows here.
	LoadAvg [2]string `json:"loadavg"`
	Results []Result  `json:"results"`
}

// Settings are the Config values that shape the figures.
type Settings struct {
	SizeBytes     int64  `json:"size_bytes"`
	BatchBytes    int    `json:"batch_bytes"`
	ValueBytes    int    `json:"value_bytes"`
	ProduceWindow int    `json:"produce_window"`
	FetchMaxBytes int32  `json:"fetch_max_bytes"`
	Conns         int    `json:"conns"`
	MinDuration   string `json:"min_duration"`
	RawChunkBytes int    `json:"raw_chunk_bytes"`
	Durability    string `json:"durability"`
	Rounds        int    `json:"rounds"`
}

// sample is one round of one path.
type sample struct {
	bytes     int64
	elapsed   time.Duration
	serverCPU time.Duration
	clientCPU time.Duration
}

// resultOf merges the rounds of one path: MB/s is the median of the rounds'
// rates (robust to a round disturbed by other work on the machine), bytes,
// time and CPU are sums, so CPU per GB is the overall ratio.
func resultOf(name, kind string, ss []sample) Result {
	r := Result{Name: name, Kind: kind}
	var bcpu, ccpu time.Duration
	for _, s := range ss {
		r.Bytes += s.bytes
		r.Seconds += s.elapsed.Seconds()
		bcpu += s.serverCPU
		ccpu += s.clientCPU
		if sec := s.elapsed.Seconds(); sec > 0 {
			r.SamplesMBps = append(r.SamplesMBps, float64(s.bytes)/1e6/sec)
		}
	}
	r.ServerCPUSeconds, r.ClientCPUSeconds = bcpu.Seconds(), ccpu.Seconds()
	r.MBps = median(r.SamplesMBps)
	if gb := float64(r.Bytes) / 1e9; gb > 0 {
		r.ServerCPUPerGB = r.ServerCPUSeconds / gb
		r.TotalCPUPerGB = (r.ServerCPUSeconds + r.ClientCPUSeconds) / gb
	}
	return r
}

// median returns the middle value (the mean of the two middle values for an
// even count); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// link fills PctOfBaseline from the named baselines.
func (rep *Report) link() {
	by := make(map[string]float64, len(rep.Results))
	for _, r := range rep.Results {
		by[r.Name] = r.MBps
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if base := by[r.Baseline]; r.Baseline != "" && base > 0 {
			r.PctOfBaseline = 100 * r.MBps / base
		}
	}
}

// Result returns the result with the given name.
func (rep *Report) Result(name string) (Result, bool) {
	for _, r := range rep.Results {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

// WriteTable prints the figures as an aligned text table.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "path\tMB/s\tserver CPU-s/GB\ttotal CPU-s/GB\traw limit\traw MB/s\t%% of raw\t\n")
	by := make(map[string]Result, len(rep.Results))
	for _, r := range rep.Results {
		by[r.Name] = r
	}
	for _, r := range rep.Results {
		if r.Kind != KindBroker {
			continue
		}
		base := by[r.Baseline]
		pct := fmt.Sprintf("%.0f%%", r.PctOfBaseline)
		if r.GoalPctOfBaseline > 0 {
			pct += fmt.Sprintf(" (goal %.0f%%)", r.GoalPctOfBaseline)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%s\t%.0f\t%s\t\n",
			r.Name, r.MBps, r.ServerCPUPerGB, r.TotalCPUPerGB, r.Baseline, base.MBps, pct)
	}
	fmt.Fprintf(tw, "\t\t\t\t\t\t\t\n")
	for _, r := range rep.Results {
		if r.Kind != KindRaw {
			continue
		}
		server := "-"
		if r.ServerCPUSeconds > 0 {
			server = fmt.Sprintf("%.2f", r.ServerCPUPerGB)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.2f\t\t\t\t\n", r.Name, r.MBps, server, r.TotalCPUPerGB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	m := rep.Machine
	_, err := fmt.Fprintf(w, "\n%d CPUs (%s), kernel %s, %s RAM, %s; MB = 1e6 bytes; MB/s = median of %d rounds; "+
		"%s produced, fetch rounds at least %s; load average %s at start, %s at end\n",
		m.NumCPU, m.CPUModel, m.Kernel, m.MemTotal, m.GoVersion, max(rep.Settings.Rounds, 1),
		FormatBytes(rep.Settings.SizeBytes), rep.Settings.MinDuration, rep.LoadAvg[0], rep.LoadAvg[1])
	return err
}

// WriteJSON writes the report as indented JSON to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: json: %w", err)
	}
	return nil
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machineInfo reads the CPU model, kernel and memory from /proc.
func machineInfo() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				var kb int64
				if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb); err == nil {
					m.MemTotal = FormatBytes(kb << 10)
				}
				break
			}
		}
	}
	return m
}
