package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ReplConfig sets up one replication benchmark run (`sluice bench
// replication`). Build it with DefaultReplConfig.
type ReplConfig struct {
	// Binary is the sluice executable started as `Binary broker ...` and
	// `Binary bench raw-peer ...`. Required.
	Binary string
	// WorkDir holds the brokers' data dirs and logs, the cluster secret and
	// the raw baseline's files. Empty: a fresh directory under os.TempDir(),
	// removed at the end unless Keep.
	WorkDir string
	Keep    bool
	// BrokerArgs are appended to every broker command line (after the
	// benchmark's own flags). Empty: the brokers run at their defaults, the
	// settings users get.
	BrokerArgs []string

	// BatchBytes bounds each pre-built RecordBatch of the raw client.
	// Default 1 MiB (1,014 records of 1 KiB).
	BatchBytes int
	// ValueBytes is the value size of every record. Default 1024.
	ValueBytes int
	// ProduceWindow is how many Produce requests the raw client keeps in
	// flight. Default 4.
	ProduceWindow int

	// CatchUpBytes is how much a frozen follower has to catch up on, per
	// round. Default 1 GiB.
	CatchUpBytes int64
	// CatchUpRounds alternates that many catch-ups with as many raw
	// sendfile-into-a-file rounds. Default 3.
	CatchUpRounds int
	// RawChunk is the bytes per sendfile call of the raw peer. Default
	// 16 MiB; the raw receiver reads and writes BatchBytes at a time.
	RawChunk int

	// AcksAllBytes is what the raw client produces with acks=all per
	// round. Default 256 MiB: three copies (768 MiB of dirty pages) stay
	// under this 24 GiB machine's 10% background-writeback threshold.
	AcksAllBytes int64
	// AcksAllRounds alternates that many raw-client rounds with as many
	// franz-go rounds. Default 3.
	AcksAllRounds int
	// KgoBytes is the record value bytes a franz-go producer (acks=all,
	// idempotent: kgo's defaults) writes per round; 0 skips it. Default
	// 128 MiB.
	KgoBytes int64

	// NATSScript is scripts/nats-bench.sh; empty skips the JetStream
	// comparison.
	NATSScript string
	// NATSMsgs is the message count of the JetStream run. Default 200,000.
	NATSMsgs int
	// NATSBinDir is passed to the script as --bin-dir (empty: it builds
	// into a throwaway directory).
	NATSBinDir string

	// LatencyFractions are the offered loads of the latency curve, as
	// fractions of the measured acks=all throughput; 0.5 is the goal's
	// point. Default 0.1, 0.25, 0.5, 0.75.
	LatencyFractions []float64
	// LatencyBatchBytes is the batch size of the rate-limited producer.
	// Default 0: BatchBytes.
	LatencyBatchBytes int
	// LatencyDuration is how long each point of the curve sends. Default 2s.
	LatencyDuration time.Duration
	// LatencyWindow bounds the requests in flight of the rate-limited
	// producer. Default 64.
	LatencyWindow int

	// FailoverSamples is how many times a partition leader is killed with
	// SIGKILL (and restarted). Default 5.
	FailoverSamples int

	// PhaseTimeout bounds every phase. Default 5 minutes.
	PhaseTimeout time.Duration
	// Progress receives a line a second while a phase runs; nil = silent.
	Progress io.Writer
	// Logger receives debug details; nil = discard.
	Logger *slog.Logger
}

// DefaultReplConfig returns the settings of the documented run (Binary unset).
func DefaultReplConfig() ReplConfig {
	return ReplConfig{
		BatchBytes:       1 << 20,
		ValueBytes:       1024,
		ProduceWindow:    4,
		CatchUpBytes:     1 << 30,
		CatchUpRounds:    3,
		RawChunk:         16 << 20,
		AcksAllBytes:     256 << 20,
		AcksAllRounds:    3,
		KgoBytes:         128 << 20,
		NATSMsgs:         200000,
		LatencyFractions: []float64{0.1, 0.25, 0.5, 0.75},
		LatencyDuration:  2 * time.Second,
		LatencyWindow:    64,
		FailoverSamples:  5,
		PhaseTimeout:     5 * time.Minute,
	}
}

// Validate reports every invalid setting.
func (c ReplConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Binary == "" {
		bad("Binary is empty")
	}
	if c.BatchBytes < 4<<10 || c.BatchBytes > 1<<20 {
		bad("BatchBytes %d outside [4 KiB, 1 MiB] (the broker's default max.message.bytes)", c.BatchBytes)
	}
	if c.ValueBytes < 1 || c.ValueBytes > c.BatchBytes/2 {
		bad("ValueBytes %d outside [1, BatchBytes/2]", c.ValueBytes)
	}
	if c.ProduceWindow < 1 || c.ProduceWindow > 64 {
		bad("ProduceWindow %d outside [1, 64]", c.ProduceWindow)
	}
	if c.CatchUpBytes < int64(c.BatchBytes) || c.CatchUpBytes > 16<<30 {
		bad("CatchUpBytes %d outside [BatchBytes, 16 GiB]", c.CatchUpBytes)
	}
	if c.CatchUpRounds < 0 || c.CatchUpRounds > 20 {
		bad("CatchUpRounds %d outside [0, 20]", c.CatchUpRounds)
	}
	if c.RawChunk < 64<<10 || c.RawChunk > 1<<30 {
		bad("RawChunk %d outside [64 KiB, 1 GiB]", c.RawChunk)
	}
	if c.AcksAllBytes < int64(c.BatchBytes) || c.AcksAllBytes > 16<<30 {
		bad("AcksAllBytes %d outside [BatchBytes, 16 GiB]", c.AcksAllBytes)
	}
	if c.AcksAllRounds < 1 || c.AcksAllRounds > 20 {
		bad("AcksAllRounds %d outside [1, 20]", c.AcksAllRounds)
	}
	if c.KgoBytes < 0 || c.KgoBytes > 16<<30 {
		bad("KgoBytes %d outside [0, 16 GiB]", c.KgoBytes)
	}
	if c.NATSScript != "" && (c.NATSMsgs < 1 || c.NATSMsgs > 10_000_000) {
		bad("NATSMsgs %d outside [1, 10,000,000]", c.NATSMsgs)
	}
	for _, f := range c.LatencyFractions {
		if f <= 0 || f > 1 {
			bad("latency fraction %v outside (0, 1]", f)
		}
	}
	if c.LatencyBatchBytes != 0 && (c.LatencyBatchBytes < 2<<10 || c.LatencyBatchBytes > 1<<20) {
		bad("LatencyBatchBytes %d outside [2 KiB, 1 MiB]", c.LatencyBatchBytes)
	}
	if c.LatencyDuration < 100*time.Millisecond || c.LatencyDuration > 10*time.Minute {
		bad("LatencyDuration %v outside [100ms, 10m]", c.LatencyDuration)
	}
	if c.LatencyWindow < 1 || c.LatencyWindow > 1024 {
		bad("LatencyWindow %d outside [1, 1024]", c.LatencyWindow)
	}
	if c.FailoverSamples < 0 || c.FailoverSamples > 100 {
		bad("FailoverSamples %d outside [0, 100]", c.FailoverSamples)
	}
	if c.PhaseTimeout <= 0 {
		bad("PhaseTimeout %v <= 0", c.PhaseTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// replRunner holds the state of one RunReplication; it is owned by the
// goroutine that runs it.
type replRunner struct {
	rc    ReplConfig
	log   *slog.Logger
	rep   *ReplReport
	prog  *progress
	work  string
	cl    *cluster
	admin *kconn
}

// RunReplication starts a three-broker cluster from cfg.Binary and measures,
// in order: a frozen follower's catch-up beside a raw sendfile-into-a-file
// baseline, acks=all throughput (raw client and franz-go, then NATS
// JetStream R3 if configured), the acks=all latency curve, and the time from
// SIGKILL of a partition leader to the first acknowledged write on its
// successor. On error the report holds what was measured so far.
func RunReplication(ctx context.Context, rc ReplConfig) (*ReplReport, error) {
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	log := rc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	work := rc.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "sluice-bench-repl-")
		if err != nil {
			return nil, fmt.Errorf("bench: work dir: %w", err)
		}
		work = d
		if !rc.Keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: work dir: %w", err)
	}
	rep := &ReplReport{
		Started: time.Now(),
		Machine: machineInfo(),
		LoadAvg: [2]string{loadAvg(), ""},
		Settings: ReplSettings{
			BatchBytes: rc.BatchBytes, ValueBytes: rc.ValueBytes, ProduceWindow: rc.ProduceWindow,
			CatchUpBytes: rc.CatchUpBytes, CatchUpRounds: rc.CatchUpRounds, AcksAllBytes: rc.AcksAllBytes,
			AcksAllRounds: rc.AcksAllRounds, KgoBytes: rc.KgoBytes, LatencyDuration: rc.LatencyDuration.String(),
			LatencyWindow: rc.LatencyWindow, FailoverSamples: rc.FailoverSamples, BrokerArgs: rc.BrokerArgs,
		},
	}
	prog := newProgress(rc.Progress)
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { defer pwg.Done(); prog.run(pctx, time.Second) }()
	defer func() { pcancel(); pwg.Wait() }()

	r := &replRunner{rc: rc, log: log, rep: rep, prog: prog, work: work}
	err := r.all(ctx)
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.LoadAvg[1] = loadAvg()
	rep.judge()
	if err != nil && rc.Keep {
		err = fmt.Errorf("%w (work dir kept: %s)", err, work)
	}
	return rep, err
}

func (r *replRunner) all(ctx context.Context) (err error) {
	r.prog.beginWait("starting 3 brokers")
	cctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	r.cl, err = startCluster(cctx, r.rc.Binary, r.work, r.rc.BrokerArgs, r.prog)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if r.admin != nil {
			r.admin.Close()
		}
		if err != nil {
			r.cl.kill()
			return
		}
		err = r.cl.stop(30 * time.Second)
	}()
	for _, n := range r.cl.nodes {
		r.log.Debug("broker ready", "node_id", n.ID, "pid", n.Pid(), "plain", n.PlainAddr, "http", n.HTTPAddr, "internal", n.Internal, "gossip", n.Gossip)
	}
	if r.admin, err = dialKafka(ctx, r.cl.nodes[0].PlainAddr, nil); err != nil {
		return err
	}
	if err := r.catchUp(ctx); err != nil {
		return err
	}
	if err := r.acksAll(ctx); err != nil {
		return err
	}
	if err := r.nats(ctx); err != nil {
		return err
	}
	if err := r.latency(ctx); err != nil {
		return err
	}
	return r.failover(ctx)
}

// topic creates topic with partitions partitions on all three brokers and
// waits until every partition has a leader with a full, caught-up ISR.
func (r *replRunner) topic(ctx context.Context, topic string, partitions int32) error {
	if err := r.admin.createTopicRF(ctx, topic, partitions, clusterSize); err != nil {
		return err
	}
	return r.cl.waitFor(ctx, 60*time.Second, topic+" with a full ISR", func(sts []clusterStatus) (bool, string) {
		return fullISR(sts, topic, partitions)
	})
}

// leader returns the node leading partition 0 of topic and its state.
func (r *replRunner) leader(ctx context.Context, topic string) (*clusterNode, ledPartition, int32, error) {
	sts, err := r.cl.statuses(ctx)
	if err != nil {
		return nil, ledPartition{}, 0, err
	}
	id, lp, ok := leaderOf(sts, topic, 0)
	if !ok {
		return nil, ledPartition{}, 0, fmt.Errorf("bench: %s-0 has no leader", topic)
	}
	controller := int32(-1)
	for _, st := range sts {
		if st.NodeID == id {
			controller = st.ControllerID
		}
	}
	return r.cl.node(id), lp, controller, nil
}

// clusterCPU returns the CPU time all running brokers have used.
func (r *replRunner) clusterCPU() (time.Duration, error) {
	var sum time.Duration
	for _, n := range r.cl.nodes {
		c, err := n.CPU()
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// dropTopic deletes a topic the benchmark is done with, so its files (and
// their dirty pages) leave the page cache before the next phase.
func (r *replRunner) dropTopic(ctx context.Context, topic string) error {
	return r.admin.deleteTopic(ctx, topic)
}
