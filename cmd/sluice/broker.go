package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/node"
	"github.com/sluice-io/sluice/segment"
)

// durabilityFlag maps --log.durability onto segment.Durability.
type durabilityFlag struct{ d *segment.Durability }

func (f durabilityFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durabilityFlag) Set(s string) error {
	d, err := segment.ParseDurability(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// brokerFlags registers every broker setting on fs, writing into cfg. The
// flag names are also the keys of a --config file.
func brokerFlags(fs *flag.FlagSet, cfg *node.Config, lf *logFlags) {
	fs.String("config", "", "file of `name = value` lines using these flag names; command-line flags win")
	v := func(p *int32, name string, usage string) {
		fs.Func(name, fmt.Sprintf("%s (default %d)", usage, *p), func(s string) error {
			x, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				return fmt.Errorf("--%s wants a 32-bit integer", name)
			}
			*p = int32(x)
			return nil
		})
	}
	v(&cfg.NodeID, "node-id", "this broker's id")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for topic metadata and partition logs")

	fs.StringVar(&cfg.Client.Addr, "client.addr", cfg.Client.Addr, "TLS client listener host:port (empty: off)")
	fs.StringVar(&cfg.Client.AdvertisedHost, "client.advertised-host", cfg.Client.AdvertisedHost, "host name advertised for the TLS listener (default: bound host)")
	fs.StringVar(&cfg.ClientTLS.CertFile, "client.cert", cfg.ClientTLS.CertFile, "PEM server certificate for the TLS listener")
	fs.StringVar(&cfg.ClientTLS.KeyFile, "client.key", cfg.ClientTLS.KeyFile, "PEM private key for the TLS listener")
	fs.StringVar(&cfg.ClientTLS.ClientCAFile, "client.ca", cfg.ClientTLS.ClientCAFile, "PEM CA that verifies client certificates (enables client-certificate auth)")
	fs.BoolVar(&cfg.ClientTLS.RequireClientCert, "client.require-cert", cfg.ClientTLS.RequireClientCert, "refuse TLS clients without a certificate signed by --client.ca")
	fs.StringVar(&cfg.ClientPlain.Addr, "client-plain.addr", cfg.ClientPlain.Addr, "plaintext client listener host:port (empty: off)")
	fs.StringVar(&cfg.ClientPlain.AdvertisedHost, "client-plain.advertised-host", cfg.ClientPlain.AdvertisedHost, "host name advertised for the plaintext listener")
	fs.StringVar(&cfg.HTTP.Addr, "http.addr", cfg.HTTP.Addr, "HTTP listener for /healthz, /readyz, /metrics (empty: off)")

	v(&cfg.MaxFrameBytes, "max-frame-bytes", "largest request frame accepted")
	fs.IntVar(&cfg.MaxInFlightRequests, "max-inflight-requests", cfg.MaxInFlightRequests, "request frames read ahead per connection")
	fs.Int64Var(&cfg.MaxInFlightBytes, "max-inflight-bytes", cfg.MaxInFlightBytes, "bytes of read-ahead frames per connection")
	fs.Int64Var(&cfg.MaxQueuedRequestBytes, "max-queued-request-bytes", cfg.MaxQueuedRequestBytes, "bytes of unanswered request frames across all connections")
	v(&cfg.MaxNonProduceFrameBytes, "max-non-produce-frame-bytes", "largest frame of a request other than Produce")
	v(&cfg.ReplicaFetchMaxBytes, "replica-fetch-max-bytes", "bytes a follower fetch asks per partition (replica.fetch.max.bytes)")
	v(&cfg.ReplicaFetchResponseMaxBytes, "replica-fetch-response-max-bytes", "bytes a follower fetch asks per response (replica.fetch.response.max.bytes)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "limit for writing one response")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", cfg.AutoCreateTopics, "create unknown topics on Metadata and Produce")
	v(&cfg.DefaultPartitions, "default-partitions", "partitions of auto-created topics")
	fs.BoolVar(&cfg.DisableSendfile, "disable-sendfile", cfg.DisableSendfile, "plaintext fetches copy instead of using sendfile (for comparisons)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "limit for a graceful shutdown")
	fs.DurationVar(&cfg.RetentionCheckInterval, "retention-check-interval", cfg.RetentionCheckInterval, "how often retention runs")

	fs.Int64Var(&cfg.Log.SegmentBytes, "log.segment-bytes", cfg.Log.SegmentBytes, "roll a segment at this size")
	fs.DurationVar(&cfg.Log.SegmentMaxAge, "log.segment-age", cfg.Log.SegmentMaxAge, "roll a segment after this long (0: never)")
	fs.Int64Var(&cfg.Log.RetentionBytes, "log.retention-bytes", cfg.Log.RetentionBytes, "delete old segments beyond this size per partition (-1: unlimited)")
	fs.DurationVar(&cfg.Log.RetentionAge, "log.retention", cfg.Log.RetentionAge, "delete segments older than this (negative: keep forever)")
	fs.IntVar(&cfg.Log.MaxBatchBytes, "log.max-batch-bytes", cfg.Log.MaxBatchBytes, "largest record batch accepted (max.message.bytes)")
	fs.Var(durabilityFlag{&cfg.Log.Durability}, "log.durability", "when appends reach the disk: never (page cache; replication protects), interval, always (fdatasync before ack)")
	fs.DurationVar(&cfg.Log.FlushInterval, "log.flush-interval", cfg.Log.FlushInterval, "fsync period for --log.durability=interval")

	clusterFlags(fs, cfg)
	lf.register(fs)
}

type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "text or json")
}

func (l *logFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("--log-level %q: %v", l.level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", l.format)
}

func runBroker(ctx context.Context, args []string) error {
	cfg := node.DefaultConfig()
	cfg.DataDir = "data"
	cfg.ClientPlain.Addr = "127.0.0.1:9092"
	var lf logFlags
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	brokerFlags(fs, &cfg, &lf)
	if path, err := configFileArg(args); err != nil {
		return usagef("%v", err)
	} else if path != "" {
		if err := applyConfigFile(fs, path); err != nil {
			return usagef("%v", err)
		}
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("broker takes no arguments, got %q", pos)
	}
	log, err := lf.logger()
	if err != nil {
		return err
	}
	cfg.Logger = log
	// node.New validates cfg and hands the segment logs its logger, which carries node_id.
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", "reason", "signal")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}
