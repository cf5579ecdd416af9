package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newResult builds a one-round result.
func newResult(name, kind string, bytes int64, elapsed, serverCPU, clientCPU time.Duration) Result {
	return resultOf(name, kind, []sample{{bytes, elapsed, serverCPU, clientCPU}})
}

func sampleReport() *Report {
	rep := &Report{Started: time.Unix(1700000000, 0), Machine: machineInfo(),
		Settings: Settings{SizeBytes: 1 << 30, Conns: 1, MinDuration: "5s"}}
	rep.Results = []Result{
		newResult(RawSendfile, KindRaw, 4e9, 2*time.Second, 0, 1500*time.Millisecond),
		newResult(FetchSendfile, KindBroker, 3e9, 2*time.Second, 800*time.Millisecond, time.Second),
		newResult(FetchTLS, KindBroker, 1e9, 2*time.Second, 2*time.Second, time.Second),
		newResult(RawTLS, KindRaw, 1.2e9, 2*time.Second, 0, 4*time.Second),
	}
	rep.Results[1].Baseline = RawSendfile
	rep.Results[2].Baseline = RawTLS
	rep.link()
	return rep
}

func TestReportFigures(t *testing.T) {
	rep := sampleReport()
	fs, _ := rep.Result(FetchSendfile)
	if fs.MBps != 1500 || fs.PctOfBaseline != 75 {
		t.Fatalf("%s: %.1f MB/s, %.1f%% of raw; want 1500, 75", fs.Name, fs.MBps, fs.PctOfBaseline)
	}
	if want := 0.8 / 3; abs(fs.ServerCPUPerGB-want) > 1e-9 || abs(fs.TotalCPUPerGB-1.8/3) > 1e-9 {
		t.Fatalf("CPU per GB broker %.4f total %.4f", fs.ServerCPUPerGB, fs.TotalCPUPerGB)
	}
	var tbl bytes.Buffer
	if err := rep.WriteTable(&tbl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{FetchSendfile, RawTLS, "75%", "1500"} {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Results) != 4 || back.Results[1].PctOfBaseline != 75 {
		t.Fatalf("JSON round trip: %v, %+v", err, back.Results)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestSVGWellFormed(t *testing.T) {
	rep := sampleReport()
	rep.Results[1].Name = "a <b> & c" // escaped, not markup
	rep.link()
	svg := rep.SVG(1000)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	rects, texts := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "text":
				texts++
			}
		}
	}
	// Background + two broker paths each with a bar and a baseline bar.
	if rects != 5 {
		t.Errorf("SVG has %d rects, want 5", rects)
	}
	if !bytes.Contains(svg, []byte("a &lt;b&gt; &amp; c")) || !bytes.Contains(svg, []byte("goal 1000 MB/s")) {
		t.Errorf("SVG lacks the escaped label or the goal line:\n%s", svg)
	}
	if err := rep.WriteSVG(filepath.Join(t.TempDir(), "x.svg"), 0); err != nil {
		t.Fatal(err)
	}
	// An empty report still renders.
	if _, err := xml.NewDecoder(bytes.NewReader((&Report{}).SVG(0))).Token(); err != nil {
		t.Fatal(err)
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0.3, 0.5}, {1, 1}, {140, 200}, {260, 500}, {700, 1000}, {0, 0}, {-1, 0}} {
		if got := niceStep(tc.in); abs(got-tc.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Binary = "/bin/true"
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no binary":         func(c *Config) { c.Binary = "" },
		"tiny size":         func(c *Config) { c.Size = 10 },
		"fetch below batch": func(c *Config) { c.FetchMaxBytes = 512 << 10 },
		"zero conns":        func(c *Config) { c.Conns = 0 },
		"value too big":     func(c *Config) { c.ValueBytes = c.BatchBytes },
		"no passes":         func(c *Config) { c.MaxPasses = 0 },
		"no timeout":        func(c *Config) { c.PhaseTimeout = 0 },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
}
