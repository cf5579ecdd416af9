package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// What an acknowledgement means, for each system measured.
const (
	AckSluiceAll = "acks=all: every member of the ISR (3 of 3 here; never fewer than min.insync.replicas = 2) has the batch in its page cache (durability never, the default)"
	AckJetStream = "JetStream publish ack: a quorum (2 of 3) of the R3 stream's replicas stored the message (file storage, sync_interval 2 min, the default)"
)

// acksAll alternates AcksAllRounds rounds of the pipelined raw client
// (acks=-1, BatchBytes batches of ValueBytes records, ProduceWindow in
// flight) with as many franz-go rounds (acks=all and idempotence, kgo's
// defaults), each on a fresh RF=3 topic deleted after the round so the page
// cache holds no more than one round's dirty data.
func (r *replRunner) acksAll(ctx context.Context) error {
	batch, err := BuildBatch(r.rc.BatchBytes, r.rc.ValueBytes, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	count := int((r.rc.AcksAllBytes + int64(len(batch.Bytes)) - 1) / int64(len(batch.Bytes)))
	var raw, kg []sample
	var records int64
	for i := range r.rc.AcksAllRounds {
		s, err := r.acksAllRaw(ctx, i, batch, count)
		if err != nil {
			return err
		}
		raw = append(raw, s)
		records += int64(count) * int64(batch.Records)
		if r.rc.KgoBytes > 0 {
			s, err := r.acksAllKgo(ctx, i, batch)
			if err != nil {
				return err
			}
			kg = append(kg, s)
		}
	}
	res := throughputOf(ProduceAllRaw, raw, records)
	res.Ack = AckSluiceAll
	res.Note = fmt.Sprintf("one connection to the partition leader, %d requests in flight, %d B batches of %d records of %d B values, %d rounds of %d batches; CPU: all three brokers (server) and this process (client)",
		r.rc.ProduceWindow, len(batch.Bytes), batch.Records, r.rc.ValueBytes, r.rc.AcksAllRounds, count)
	r.rep.AcksAll = append(r.rep.AcksAll, res)
	if len(kg) > 0 {
		per := r.rc.KgoBytes / int64(r.rc.ValueBytes)
		res := throughputOf(ProduceAllKgo, kg, per*int64(len(kg)))
		res.Ack = AckSluiceAll
		res.Note = fmt.Sprintf("franz-go %s with its defaults (acks=all, idempotent, 10 ms linger, up to 5 requests in flight) but 1 MiB batches; %d records of %d B per round; bytes are record values",
			kgoVersion, per, r.rc.ValueBytes)
		r.rep.AcksAll = append(r.rep.AcksAll, res)
	}
	return nil
}

// kgoVersion is the franz-go release in go.mod, for the report.
const kgoVersion = "v1.22.3"

// Result names of the replication benchmark.
const (
	ProduceAllRaw     = "produce acks=all RF=3 (pipelined raw client)"
	ProduceAllKgo     = "produce acks=all RF=3 (franz-go)"
	NATSJetStreamR3   = "NATS JetStream R3 publish (nats bench js pub async)"
	RawSendfileToFile = "raw: sendfile loopback into a file"
	CatchUpName       = "follower catch-up (leader sendfile to a frozen-then-resumed follower)"
)

func (r *replRunner) acksAllRaw(ctx context.Context, i int, batch Batch, count int) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	label := fmt.Sprintf("%s [%d/%d]", "acks=all raw", i+1, r.rc.AcksAllRounds)
	topic := fmt.Sprintf("acks-all-%d", i)
	r.prog.beginWait(label + ": topic")
	if err := r.topic(ctx, topic, 1); err != nil {
		return sample{}, err
	}
	leader, _, _, err := r.leader(ctx, topic)
	if err != nil {
		return sample{}, err
	}
	c, err := dialKafka(ctx, leader.PlainAddr, nil)
	if err != nil {
		return sample{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// Unmeasured warm-up: connection, buffers, the followers' fetch sessions.
	if err := producePipelined(ctx, c, pipeSpec{topic: topic, batch: batch, count: 8, window: r.rc.ProduceWindow, acks: -1}, r.prog); err != nil {
		return sample{}, err
	}
	bytes := int64(count) * int64(len(batch.Bytes))
	s, err := r.measureCluster(label, bytes, func() error {
		return producePipelined(ctx, c, pipeSpec{topic: topic, batch: batch, count: count, window: r.rc.ProduceWindow, acks: -1}, r.prog)
	})
	if err != nil {
		return s, err
	}
	return s, r.dropTopic(ctx, topic)
}

func (r *replRunner) acksAllKgo(ctx context.Context, i int, batch Batch) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	label := fmt.Sprintf("%s [%d/%d]", "acks=all franz-go", i+1, r.rc.AcksAllRounds)
	topic := fmt.Sprintf("acks-all-kgo-%d", i)
	r.prog.beginWait(label + ": topic")
	if err := r.topic(ctx, topic, 1); err != nil {
		return sample{}, err
	}
	var seeds []string
	for _, n := range r.cl.nodes {
		seeds = append(seeds, n.PlainAddr)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(int32(r.rc.BatchBytes)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedBytes(256<<20),
	)
	if err != nil {
		return sample{}, fmt.Errorf("bench: kgo client: %w", err)
	}
	defer cl.Close()
	value := batch.Bytes[len(batch.Bytes)-r.rc.ValueBytes-1 : len(batch.Bytes)-1] // one record's value
	per := r.rc.KgoBytes / int64(r.rc.ValueBytes)
	r.prog.begin(label+" (warm-up)", 0)
	if err := produceKgo(ctx, cl, value, max(per/20, 1), r.prog); err != nil {
		return sample{}, err
	}
	s, err := r.measureCluster(label, per*int64(len(value)), func() error {
		return produceKgo(ctx, cl, value, per, r.prog)
	})
	if err != nil {
		return s, err
	}
	cl.Close()
	return s, r.dropTopic(ctx, topic)
}

// measureCluster runs fn as one round moving bytes, charging the CPU of all
// three brokers (server) and of this process (client).
func (r *replRunner) measureCluster(label string, bytes int64, fn func() error) (sample, error) {
	r.prog.begin(label, bytes)
	c0, err := r.clusterCPU()
	if err != nil {
		return sample{}, err
	}
	s0 := selfCPU()
	t0 := time.Now()
	err = fn()
	s := sample{bytes: bytes, elapsed: time.Since(t0), clientCPU: selfCPU() - s0}
	c1, cerr := r.clusterCPU()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return sample{}, fmt.Errorf("bench: %s: %w", label, err)
	}
	s.serverCPU = c1 - c0
	r.prog.note("%s: %.1f MB in %.2fs = %.0f MB/s; brokers %.2f CPU-s, client %.2f CPU-s",
		label, float64(bytes)/1e6, s.elapsed.Seconds(), float64(bytes)/1e6/s.elapsed.Seconds(), s.serverCPU.Seconds(), s.clientCPU.Seconds())
	return s, nil
}

// nats runs scripts/nats-bench.sh (a three-node JetStream cluster, an R3
// stream, `nats bench js pub async` with ValueBytes messages) and records
// its result line.
func (r *replRunner) nats(ctx context.Context) error {
	if r.rc.NATSScript == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	logPath := filepath.Join(r.work, "nats-bench.log")
	var out []byte
	var err error
	for attempt := range 3 {
		r.prog.beginWait("NATS JetStream R3 (" + filepath.Base(r.rc.NATSScript) + ")")
		var ports []string
		if ports, err = freePorts(1); err != nil {
			return err
		}
		_, p, _ := strings.Cut(ports[0], ":")
		base, _ := strconv.Atoi(p)
		base = min(base, 65535-30)
		args := []string{r.rc.NATSScript, "--msgs", strconv.Itoa(r.rc.NATSMsgs), "--size", strconv.Itoa(r.rc.ValueBytes),
			"--base-port", strconv.Itoa(base)}
		if r.rc.NATSBinDir != "" {
			args = append(args, "--bin-dir", r.rc.NATSBinDir)
		}
		out, err = r.runScript(ctx, logPath, args)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 && attempt < 2 {
			continue // a port was taken: another base
		}
		break
	}
	if err != nil {
		return fmt.Errorf("bench: %s: %w; log %s:\n%s", r.rc.NATSScript, err, logPath, logTail(logPath))
	}
	nr, err := ParseNATSResult(out)
	if err != nil {
		return fmt.Errorf("bench: %s: %w; log %s", r.rc.NATSScript, err, logPath)
	}
	r.prog.note("NATS JetStream R3: %.0f msgs/s = %.1f MB/s, servers %.2f CPU-s", nr.MsgsPerSec, nr.MBps, nr.ServerCPUSeconds)
	bytes := int64(nr.Msgs) * int64(nr.Size)
	t := Throughput{Name: NATSJetStreamR3, Bytes: bytes, Records: int64(nr.Msgs), Seconds: nr.Seconds, MBps: nr.MBps,
		RecordsPerSec: nr.MsgsPerSec, SamplesMBps: []float64{nr.MBps}, ServerCPUSeconds: nr.ServerCPUSeconds, Ack: AckJetStream,
		Note: fmt.Sprintf("scripts/nats-bench.sh: nats-server and natscli (`nats bench`) built with go install from the module proxy; %d messages of %d B, 1 client, 500 async publishes awaiting acknowledgement at a time; server CPU: all three nats-server processes, client CPU not measured", nr.Msgs, nr.Size)}
	if gb := float64(bytes) / 1e9; gb > 0 {
		t.ServerCPUPerGB = nr.ServerCPUSeconds / gb
	}
	r.rep.AcksAll = append(r.rep.AcksAll, t)
	return nil
}

// runScript runs bash with args in its own process group, copying stderr to
// the progress writer and to logPath, and returns stdout. A cancelled ctx
// sends SIGTERM to the group (the script's servers and bench client, all
// started by it), then SIGKILL after 30 s.
func (r *replRunner) runScript(ctx context.Context, logPath string, args []string) ([]byte, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== bash %q\n", args)
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, logf)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", args[0], err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if r.rc.Progress != nil {
				fmt.Fprintln(r.rc.Progress, sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, errPipe)
	}()
	wg.Wait() // stderr closes when the script and its children exit
	err = cmd.Wait()
	return stdout.Bytes(), err
}

// NATSResult is the result line of scripts/nats-bench.sh.
type NATSResult struct {
	Msgs             int
	Size             int
	Seconds          float64
	MsgsPerSec       float64
	MBps             float64
	ServerCPUSeconds float64
}

// ErrNoNATSResult reports script output without a valid result line.
var ErrNoNATSResult = errors.New("bench: no nats-bench result line")

// ParseNATSResult finds the line
//
//	nats-bench: result msgs=N size=B seconds=S msgs_per_s=X mb_per_s=Y server_cpu_s=C
//
// in the script's output and parses it; every key is required.
func ParseNATSResult(out []byte) (NATSResult, error) {
	const prefix = "nats-bench: result "
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(rest) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return NATSResult{}, fmt.Errorf("%w: field %q", ErrNoNATSResult, f)
			}
			kv[k] = v
		}
		var res NATSResult
		var errs []error
		num := func(k string) float64 {
			v, err := strconv.ParseFloat(kv[k], 64)
			if err != nil || v < 0 {
				errs = append(errs, fmt.Errorf("%s=%q", k, kv[k]))
			}
			return v
		}
		res.Msgs, res.Size = int(num("msgs")), int(num("size"))
		res.Seconds, res.MsgsPerSec, res.MBps = num("seconds"), num("msgs_per_s"), num("mb_per_s")
		res.ServerCPUSeconds = num("server_cpu_s")
		if err := errors.Join(errs...); err != nil {
			return NATSResult{}, fmt.Errorf("%w: %w", ErrNoNATSResult, err)
		}
		if res.Msgs <= 0 || res.MsgsPerSec <= 0 {
			return NATSResult{}, fmt.Errorf("%w: %d messages at %v/s", ErrNoNATSResult, res.Msgs, res.MsgsPerSec)
		}
		return res, nil
	}
	return NATSResult{}, ErrNoNATSResult
}
