package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
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
	if len(args) > 0 && args[0] == "replication" {
		return runBenchReplication(ctx, args[1:])
	}
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice bench [flags]
       sluice bench replication [flags]   (see sluice bench replication -h)
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
	if err := defaultBinary(&cfg.Binary); err != nil {
		return err
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

func runBenchReplication(ctx context.Context, args []string) error {
	cfg := bench.DefaultReplConfig()
	fs := flag.NewFlagSet("bench replication", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice bench replication [flags]
Starts a three-broker cluster (this binary, 'broker' command, every node a raft
voter, internal link and gossip on loopback, broker defaults otherwise) and
measures in one run, each beside a same-run baseline:
  1. a follower frozen (SIGSTOP) while --catchup-size is produced, then resumed:
     time until its log end equals the leader's, and the leader's CPU per GB,
     beside a raw peer process that sendfiles the same segment file to a
     socket while this process writes what it reads into a file;
  2. produce acks=all to an RF=3 topic: the pipelined raw client and franz-go,
     beside NATS JetStream R3 (--nats-script, scripts/nats-bench.sh);
  3. acks=all latency (p50/p99) of a rate-limited producer at fractions of (2);
  4. SIGKILL of a partition leader to the first acknowledged acks=all write on
     its successor (--failover-samples times; the victim is restarted).
Progress goes to stderr; the tables to stdout.
flags:
`)
		fs.PrintDefaults()
	}
	batch := int64(cfg.BatchBytes)
	fs.Var(sizeFlag{&batch}, "batch", "bytes per pre-built record batch of the raw client")
	fs.IntVar(&cfg.ValueBytes, "value-size", cfg.ValueBytes, "bytes per record value")
	fs.IntVar(&cfg.ProduceWindow, "produce-window", cfg.ProduceWindow, "produce requests in flight of the raw client")
	fs.Var(sizeFlag{&cfg.CatchUpBytes}, "catchup-size", "bytes a frozen follower catches up on, per round")
	fs.IntVar(&cfg.CatchUpRounds, "catchup-rounds", cfg.CatchUpRounds, "catch-up rounds, each followed by a raw baseline round (0: skip)")
	rawChunk := int64(cfg.RawChunk)
	fs.Var(sizeFlag{&rawChunk}, "raw-chunk", "bytes per sendfile call of the raw peer")
	fs.Var(sizeFlag{&cfg.AcksAllBytes}, "acks-all-size", "bytes the raw client produces with acks=all per round")
	fs.IntVar(&cfg.AcksAllRounds, "acks-all-rounds", cfg.AcksAllRounds, "acks=all rounds (raw client and franz-go alternate)")
	fs.Var(sizeFlag{&cfg.KgoBytes}, "kgo-size", "record value bytes the franz-go producer writes per round (0: skip)")
	fs.StringVar(&cfg.NATSScript, "nats-script", "", "scripts/nats-bench.sh, to compare with NATS JetStream R3 (empty: skip)")
	fs.IntVar(&cfg.NATSMsgs, "nats-msgs", cfg.NATSMsgs, "messages the NATS JetStream run publishes")
	fs.StringVar(&cfg.NATSBinDir, "nats-bin-dir", "", "directory holding (or receiving) nats-server and nats, passed to the script as --bin-dir (empty: a throwaway build)")
	fractions := floatList{&cfg.LatencyFractions}
	fs.Var(fractions, "latency-at", "comma-separated fractions of the acks=all throughput the latency curve offers")
	latBatch := int64(cfg.LatencyBatchBytes)
	fs.Var(sizeFlag{&latBatch}, "latency-batch", "batch size of the rate-limited producer (0: --batch)")
	fs.DurationVar(&cfg.LatencyDuration, "latency-duration", cfg.LatencyDuration, "how long each latency point sends")
	fs.IntVar(&cfg.LatencyWindow, "latency-window", cfg.LatencyWindow, "requests in flight at most of the rate-limited producer")
	fs.IntVar(&cfg.FailoverSamples, "failover-samples", cfg.FailoverSamples, "leader kills (0: skip)")
	fs.DurationVar(&cfg.PhaseTimeout, "phase-timeout", cfg.PhaseTimeout, "give up on a phase after this long")
	fs.StringVar(&cfg.Binary, "broker-binary", "", "sluice executable to start brokers from (default: this binary)")
	var brokerArgs stringList
	fs.Var(&brokerArgs, "broker-arg", "extra argument for every broker command line (repeatable, e.g. --broker-arg=--session-timeout=3s); the report lists them")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "directory for data, logs and the raw baseline's files (default: a temporary one)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary work dir")
	jsonPath := fs.String("json", "", "write the figures as JSON to this file")
	svgPath := fs.String("svg", "", "write the latency curve and the failover samples (SVG) to this file")
	quiet := fs.Bool("quiet", false, "no progress lines")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("bench replication takes no arguments, got %q", pos)
	}
	cfg.BatchBytes, cfg.RawChunk, cfg.LatencyBatchBytes = int(batch), int(rawChunk), int(latBatch)
	cfg.BrokerArgs = brokerArgs
	if err := defaultBinary(&cfg.Binary); err != nil {
		return err
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	rep, err := bench.RunReplication(ctx, cfg)
	if rep != nil {
		rep.Command = "sluice bench replication " + strings.Join(args, " ")
		if *jsonPath != "" {
			if jerr := rep.WriteJSON(*jsonPath); jerr != nil && err == nil {
				err = jerr
			}
		}
		if *svgPath != "" {
			if serr := rep.WriteSVG(*svgPath); serr != nil && err == nil {
				err = serr
			}
		}
		if terr := rep.WriteTable(os.Stdout); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

// defaultBinary sets an empty broker binary path to this executable.
func defaultBinary(bin *string) error {
	if *bin != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: own executable: %w", err)
	}
	*bin = exe
	return nil
}

// floatList is a comma-separated list of numbers (--latency-at 0.25,0.5).
type floatList struct{ p *[]float64 }

func (l floatList) String() string {
	if l.p == nil {
		return ""
	}
	s := make([]string, len(*l.p))
	for i, v := range *l.p {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func (l floatList) Set(v string) error {
	var out []float64
	for _, f := range splitList(v) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, x)
	}
	*l.p = out
	return nil
}
