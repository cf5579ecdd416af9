package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// buildSluice builds cmd/sluice into a temporary directory.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/sluice-io/sluice/cmd/sluice")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	return bin
}

// TestRunEndToEnd runs the whole benchmark with tiny sizes against real
// broker processes.
func TestRunEndToEnd(t *testing.T) {
	bin := buildSluice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Binary = bin
	cfg.WorkDir = t.TempDir()
	cfg.Size = 4 << 20
	cfg.BatchBytes = 256 << 10
	cfg.ValueBytes = 512
	cfg.FetchMaxBytes = 1 << 20 // several fetches per pass
	cfg.Conns = 2
	cfg.Duration = 0 // exactly one measured pass per connection and round
	cfg.MaxPasses = 2
	cfg.Rounds = 2
	cfg.KgoSize = 1 << 20
	cfg.RawChunk = 64 << 10
	cfg.PhaseTimeout = 60 * time.Second
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nbroker log:\n%s", err, logTail(filepath.Join(cfg.WorkDir, "broker.log")))
	}
	batch, err := BuildBatch(cfg.BatchBytes, cfg.ValueBytes, 0)
	if err != nil {
		t.Fatal(err)
	}
	preload := int64(len(batch.Bytes)) * ((cfg.Size + int64(len(batch.Bytes)) - 1) / int64(len(batch.Bytes)))
	for _, name := range []string{ProduceRaw, ProduceKgo, FetchSendfile, FetchTLS, FetchCopy,
		RawNetToFile, RawWrite, RawWriteSync, RawSendfile, RawTLS, RawCopy} {
		r, ok := rep.Result(name)
		if !ok {
			t.Errorf("no result %q", name)
			continue
		}
		if r.Bytes <= 0 || r.MBps <= 0 || r.Seconds <= 0 {
			t.Errorf("%s: %d bytes, %.1f MB/s in %.3fs", name, r.Bytes, r.MBps, r.Seconds)
		}
		if r.Kind == KindBroker && (r.Baseline == "" || r.PctOfBaseline <= 0 || r.ServerCPUSeconds < 0) {
			t.Errorf("%s: baseline %q at %.1f%%, broker CPU %.2fs", name, r.Baseline, r.PctOfBaseline, r.ServerCPUSeconds)
		}
	}
	for _, name := range []string{FetchSendfile, FetchTLS, FetchCopy} {
		r, _ := rep.Result(name)
		if want := int64(cfg.Rounds*cfg.Conns) * preload; r.Bytes != want {
			t.Errorf("%s read %d bytes, want %d rounds x %d connections x %d", name, r.Bytes, cfg.Rounds, cfg.Conns, preload)
		}
		if len(r.SamplesMBps) != cfg.Rounds {
			t.Errorf("%s has %d samples, want %d", name, len(r.SamplesMBps), cfg.Rounds)
		}
	}
	if r, _ := rep.Result(ProduceRaw); r.Bytes != preload {
		t.Errorf("produce moved %d bytes, want %d", r.Bytes, preload)
	}
	// Duration 0: each raw round is one pass per connection over the segment
	// files, which hold exactly the produced batches.
	for _, name := range []string{RawSendfile, RawTLS, RawCopy} {
		if r, _ := rep.Result(name); r.Bytes != int64(cfg.Rounds*cfg.Conns)*preload || r.Conns != cfg.Conns {
			t.Errorf("%s moved %d bytes over %d connections, want %d x %d x %d", name, r.Bytes, r.Conns, cfg.Rounds, cfg.Conns, preload)
		}
	}
	svg := filepath.Join(t.TempDir(), "bench.svg")
	if err := rep.WriteSVG(svg, 1000); err != nil {
		t.Fatal(err)
	}
}

func TestRunBrokerFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Binary = "/bin/false"
	cfg.WorkDir = t.TempDir()
	cfg.Size = 1 << 20
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, ErrBrokerExited) {
		t.Fatalf("Run with a broker that exits: %v, want ErrBrokerExited", err)
	}
	// The raw write baseline ran before the broker was needed.
	if _, ok := rep.Result(RawWrite); !ok {
		t.Fatalf("report lacks %q: %+v", RawWrite, rep.Results)
	}
}
