package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sluice-io/sluice/internal/bench"
)

// sizeFlag is a byte count flag accepting units (1GiB, 256MiB, 500MB).
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return bench.FormatBytes(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := bench.ParseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "raw-peer" {
		// Internal: the server side of a raw baseline, started by the benchmark itself.
		return bench.ServeRawPeer(ctx, args[1:], os.Stdout)
	}
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice bench [flags]
Starts its own brokers (this binary, 'broker' command) on loopback ports with a
temporary data dir and TLS material, then measures in one run:
  produce acks=1 (pipelined pre-built batches; a franz-go producer too),
  fetch over plaintext with sendfile, plaintext with copying, and TLS,
each beside its raw limit on this machine (socket to file, sendfile,
pread+write, crypto/tls copy) served by a bare peer process started from this
binary, in alternating rounds, with CPU seconds per GB of broker and peer.
Progress goes to stderr once a second; the table to stdout.
flags:
`)
		fs.PrintDefaults()
	}
	fs.Var(sizeFlag{&cfg.Size}, "size", "bytes to produce, and so the range each fetch pass reads (units: KiB MiB GiB KB MB GB)")
	fs.Var(sizeFlag{&cfg.KgoSize}, "kgo-size", "value bytes written through a franz-go producer (0: skip)")
	batch := int64(cfg.BatchBytes)
	fs.Var(sizeFlag{&batch}, "batch", "bytes per pre-built record batch (at most the broker's max batch size)")
	fs.IntVar(&cfg.ValueBytes, "value-size", cfg.ValueBytes, "bytes per record value")
	fs.IntVar(&cfg.ProduceWindow, "produce-window", cfg.ProduceWindow, "produce requests in flight")
	fetchMax := int64(cfg.FetchMaxBytes)
	fs.Var(sizeFlag{&fetchMax}, "fetch-max", "MaxBytes of every fetch request and partition")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "fetch connections in parallel (each reads the whole range)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "minimum measured time per fetch phase and raw fetch baseline")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "measure each path and its raw baseline this many times, alternately; report the median")
	fs.IntVar(&cfg.MaxPasses, "max-passes", cfg.MaxPasses, "upper bound on passes over the range per connection")
	rawChunk := int64(cfg.RawChunk)
	fs.Var(sizeFlag{&rawChunk}, "raw-chunk", "bytes per pread/write call in the raw baselines")
	fs.DurationVar(&cfg.PhaseTimeout, "phase-timeout", cfg.PhaseTimeout, "give up on a phase after this long")
	fs.StringVar(&cfg.Binary, "broker-binary", "", "sluice executable to start brokers from (default: this binary)")
	var brokerArgs stringList
	fs.Var(&brokerArgs, "broker-arg", "extra argument for every broker command line (repeatable, e.g. --broker-arg=--log.segment-bytes=268435456)")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "directory for data, certificates and broker logs (default: a temporary one)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary work dir")
	jsonPath := fs.String("json", "", "write the figures as JSON to this file")
	svgPath := fs.String("svg", "", "write a bar chart (SVG) of each path beside its raw limit to this file")
	goal := fs.Float64("goal", 1000, "MB/s goal line drawn in the SVG (0: none)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("bench takes no arguments, got %q", pos)
	}
	cfg.BatchBytes, cfg.FetchMaxBytes, cfg.RawChunk = int(batch), int32(min(fetchMax, 1<<30)), int(rawChunk)
	cfg.BrokerArgs = brokerArgs
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: own executable: %w", err)
		}
		cfg.Binary = exe
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		rep.Command = "sluice bench " + strings.Join(args, " ")
		// Files first: a closed stdout (| head) must not lose them.
		if *jsonPath != "" {
			if jerr := rep.WriteJSON(*jsonPath); jerr != nil && err == nil {
				err = jerr
			}
		}
		if *svgPath != "" && len(rep.Results) > 0 {
			if serr := rep.WriteSVG(*svgPath, *goal); serr != nil && err == nil {
				err = serr
			}
		}
		if len(rep.Results) > 0 {
			if terr := rep.WriteTable(os.Stdout); terr != nil && err == nil {
				err = terr
			}
		}
	}
	return err
}
