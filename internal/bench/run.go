package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/certs"
)

// Result names. Broker paths name the raw baseline they are compared with.
const (
	ProduceRaw    = "produce acks=1 (pipelined raw client)"
	ProduceKgo    = "produce acks=1 (franz-go client)"
	FetchSendfile = "fetch plaintext, sendfile"
	FetchCopy     = "fetch plaintext, copy"
	FetchTLS      = "fetch TLS"

	RawNetToFile = "raw: loopback TCP to file"
	RawWrite     = "raw: file write (page cache)"
	RawWriteSync = "raw: file write + fdatasync"
	RawSendfile  = "raw: sendfile loopback"
	RawCopy      = "raw: pread+write loopback"
	RawTLS       = "raw: crypto/tls loopback copy"
)

// topic names used in the broker.
const (
	benchTopic = "bench"
	kgoTopic   = "bench-kgo"
)

// runner holds the state of one Run; it is owned by the Run goroutine.
type runner struct {
	cfg       Config
	log       *slog.Logger
	rep       *Report
	prog      *progress
	work      string
	dataDir   string
	certs     certs.Files
	clientTLS *tls.Config
	end       int64 // high watermark of the bench topic after preloading
}

// Run starts broker processes from cfg.Binary, preloads a topic (the produce
// measurement), measures every fetch path with its raw baseline, and returns
// the report. On error the report holds the results measured so far.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	work := cfg.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: work dir: %w", err)
		}
		work = d
		if !cfg.Keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: work dir: %w", err)
	}
	rep := &Report{
		Started: time.Now(),
		Machine: machineInfo(),
		Settings: Settings{
			SizeBytes: cfg.Size, BatchBytes: cfg.BatchBytes, ValueBytes: cfg.ValueBytes,
			ProduceWindow: cfg.ProduceWindow, FetchMaxBytes: cfg.FetchMaxBytes, Conns: cfg.Conns,
			MinDuration: cfg.Duration.String(), RawChunkBytes: cfg.RawChunk, Durability: "never",
			Rounds: cfg.Rounds,
		},
		LoadAvg: [2]string{loadAvg(), ""},
	}
	prog := newProgress(cfg.Progress)
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { defer pwg.Done(); prog.run(pctx, time.Second) }()
	defer func() { pcancel(); pwg.Wait() }()

	r := &runner{cfg: cfg, log: log, rep: rep, prog: prog, work: work, dataDir: filepath.Join(work, "data")}
	err := r.all(ctx)
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.LoadAvg[1] = loadAvg()
	rep.link()
	if err != nil && cfg.Keep {
		err = fmt.Errorf("%w (work dir kept: %s)", err, work)
	}
	return rep, err
}

func (r *runner) all(ctx context.Context) error {
	if err := r.setupTLS(); err != nil {
		return err
	}
	if err := r.rawWrite(ctx); err != nil {
		return err
	}
	a, err := r.startBroker(ctx, false)
	if err != nil {
		return err
	}
	defer func() {
		if a != nil {
			a.Kill()
		}
	}()
	if err := r.produce(ctx, a); err != nil {
		return err
	}
	files, err := segmentFiles(r.dataDir, benchTopic)
	if err != nil {
		return err
	}
	if err := r.fetch(ctx, a, FetchSendfile, false, RawSendfile, files, peerSendfile); err != nil {
		return err
	}
	if err := r.fetch(ctx, a, FetchTLS, true, RawTLS, files, peerTLS); err != nil {
		return err
	}
	err = a.Stop(30 * time.Second)
	a = nil
	if err != nil {
		return err
	}
	b, err := r.startBroker(ctx, true)
	if err != nil {
		return err
	}
	defer b.Kill()
	if err := r.fetch(ctx, b, FetchCopy, false, RawCopy, files, peerCopy); err != nil {
		return err
	}
	return b.Stop(30 * time.Second)
}

func (r *runner) setupTLS() error {
	f, err := certs.WriteDev(filepath.Join(r.work, "certs"))
	if err != nil {
		return err
	}
	r.certs = f
	pool, err := certs.LoadPool(f.CA)
	if err != nil {
		return fmt.Errorf("bench: ca: %w", err)
	}
	r.clientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return nil
}

func (r *runner) startBroker(ctx context.Context, disableSendfile bool) (*Broker, error) {
	r.prog.note("starting broker (sendfile=%v)", !disableSendfile)
	b, err := StartBroker(ctx, BrokerSpec{
		Binary: r.cfg.Binary, DataDir: r.dataDir,
		CertFile: r.certs.ServerCert, KeyFile: r.certs.ServerKey,
		DisableSendfile: disableSendfile,
		LogPath:         filepath.Join(r.work, "broker.log"),
		ExtraArgs:       r.cfg.BrokerArgs,
	})
	if err != nil {
		return nil, err
	}
	r.log.Debug("broker ready", "pid", b.Pid(), "plain", b.PlainAddr, "tls", b.TLSAddr, "http", b.HTTPAddr, "sendfile", !disableSendfile)
	return b, nil
}

// server is a process whose CPU a phase charges: a Broker or a rawPeer.
type server interface {
	CPU() (time.Duration, error)
	Alive() error
}

// startPeer starts a raw peer process from the sluice binary.
func (r *runner) startPeer(ctx context.Context, spec rawPeerSpec) (*rawPeer, error) {
	spec.Binary = r.cfg.Binary
	spec.LogPath = filepath.Join(r.work, "raw-peer.log")
	spec.CertFile, spec.KeyFile, spec.TLS = r.certs.ServerCert, r.certs.ServerKey, r.clientTLS
	return startRawPeer(ctx, spec)
}

// measure runs fn as one round (-1: the only one) of one path: progress, timeout, and the CPU
// of server b (nil: none) and of this process. fn returns the bytes moved
// and optionally its own elapsed time (0: the round's wall time).
func (r *runner) measure(ctx context.Context, name string, round int, total int64, b server, fn func(context.Context) (int64, time.Duration, error)) (sample, error) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PhaseTimeout)
	defer cancel()
	label := name
	if round >= 0 && r.cfg.Rounds > 1 {
		label = fmt.Sprintf("%s [%d/%d]", name, round+1, r.cfg.Rounds)
	}
	r.prog.begin(label, total)
	var bcpu0 time.Duration
	if b != nil {
		c, err := b.CPU()
		if err != nil {
			return sample{}, err
		}
		bcpu0 = c
	}
	scpu0 := selfCPU()
	t0 := time.Now()
	n, elapsed, err := fn(pctx)
	wall := time.Since(t0)
	s := sample{bytes: n, elapsed: elapsed, clientCPU: selfCPU() - scpu0}
	if b != nil {
		if aerr := b.Alive(); aerr != nil {
			return sample{}, fmt.Errorf("bench: %s: %w", name, aerr)
		}
		c, cerr := b.CPU()
		if cerr != nil && err == nil {
			err = cerr
		}
		s.serverCPU = c - bcpu0
	}
	if err != nil {
		return sample{}, fmt.Errorf("bench: %s: %w", name, err)
	}
	if s.elapsed <= 0 {
		s.elapsed = wall
	}
	r.prog.note("%s: %.1f MB in %.2fs = %.0f MB/s", label, float64(n)/1e6, s.elapsed.Seconds(), float64(n)/1e6/s.elapsed.Seconds())
	return s, nil
}

// add appends the merged result of one path's rounds.
func (r *runner) add(name, kind string, ss []sample, baseline, note string) {
	res := resultOf(name, kind, ss)
	res.Baseline, res.Note = baseline, note
	r.rep.Results = append(r.rep.Results, res)
}

// rawWrite measures a bare file write of Size bytes, with and without a
// final fdatasync (for reference: the broker runs with durability never).
func (r *runner) rawWrite(ctx context.Context) error {
	if err := os.MkdirAll(r.dataDir, 0o755); err != nil {
		return fmt.Errorf("bench: data dir: %w", err)
	}
	path := filepath.Join(r.work, "raw-write.bin")
	defer os.Remove(path)
	var synced time.Duration
	s, err := r.measure(ctx, RawWrite, -1, r.cfg.Size, nil, func(ctx context.Context) (int64, time.Duration, error) {
		w, sy, err := rawDiskWrite(ctx, path, r.cfg.Size, r.cfg.RawChunk, r.prog)
		synced = sy
		return r.cfg.Size, w, err
	})
	if err != nil {
		return err
	}
	r.add(RawWrite, KindRaw, []sample{s}, "", "write(2) loop, 1 round")
	r.add(RawWriteSync, KindRaw, []sample{{bytes: r.cfg.Size, elapsed: synced}}, "", "the same writes plus one fdatasync; CPU not separated")
	return nil
}

// produce preloads the bench topic with pre-built batches over Rounds
// rounds, each followed by the raw loopback-TCP-to-file baseline of the same
// size; then, if configured, measures a franz-go producer.
func (r *runner) produce(ctx context.Context, b *Broker) error {
	c, err := dialKafka(ctx, b.PlainAddr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for _, t := range []string{benchTopic, kgoTopic} {
		if err := c.createTopic(ctx, t, 1); err != nil {
			return err
		}
	}
	batch, err := BuildBatch(r.cfg.BatchBytes, r.cfg.ValueBytes, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	bsize := int64(len(batch.Bytes))
	count := int((r.cfg.Size + bsize - 1) / bsize)
	rounds := min(r.cfg.Rounds, count)
	rawPath := filepath.Join(r.work, "raw-sink.bin")
	defer os.Remove(rawPath)
	sink, err := r.startPeer(ctx, rawPeerSpec{Mode: peerSink, SinkFile: rawPath, Chunk: len(batch.Bytes)})
	if err != nil {
		return err
	}
	defer sink.Close()
	var ps, rs []sample
	for i := range rounds {
		n := count / rounds
		if i == rounds-1 {
			n = count - (rounds-1)*(count/rounds)
		}
		bytes := int64(n) * bsize
		s, err := r.measure(ctx, ProduceRaw, i, bytes, b, func(ctx context.Context) (int64, time.Duration, error) {
			return bytes, 0, produceRaw(ctx, c, benchTopic, batch, n, r.cfg.ProduceWindow, r.prog)
		})
		if err != nil {
			return err
		}
		ps = append(ps, s)
		s, err = r.measure(ctx, RawNetToFile, i, bytes, sink, func(ctx context.Context) (int64, time.Duration, error) {
			el, err := sink.sinkRound(ctx, bytes, batch.Bytes, r.prog)
			return bytes, el, err
		})
		if err != nil {
			return err
		}
		rs = append(rs, s)
	}
	r.add(ProduceRaw, KindBroker, ps, RawNetToFile, fmt.Sprintf("%d batches of %d B (%d records of %d B values), %d requests in flight, 1 connection",
		count, bsize, batch.Records, r.cfg.ValueBytes, r.cfg.ProduceWindow))
	r.add(RawNetToFile, KindRaw, rs, "", fmt.Sprintf("one connection to a receiver process that reads %d B chunks and writes each to a file (no fsync), then acknowledges", len(batch.Bytes)))
	end, err := c.endOffset(ctx, benchTopic)
	if err != nil {
		return err
	}
	if want := int64(count) * int64(batch.Records); end != want {
		return fmt.Errorf("bench: %s high watermark %d after producing %d records", benchTopic, end, want)
	}
	r.end = end
	if r.cfg.KgoSize == 0 {
		return nil
	}
	value := batch.Bytes[len(batch.Bytes)-r.cfg.ValueBytes-1 : len(batch.Bytes)-1] // one record's value, reused
	cl, err := newKgoProducer(b.PlainAddr, kgoTopic, r.cfg.BatchBytes)
	if err != nil {
		return err
	}
	defer cl.Close()
	perRound := max(r.cfg.KgoSize/int64(max(r.cfg.ValueBytes, 1))/int64(r.cfg.Rounds), 1)
	// Unmeasured warm-up: metadata, connection and buffers.
	r.prog.begin(ProduceKgo+" (warm-up)", 0)
	if err := produceKgo(ctx, cl, value, max(perRound/10, 1), r.prog); err != nil {
		return err
	}
	var ks []sample
	for i := range r.cfg.Rounds {
		bytes := perRound * int64(len(value))
		s, err := r.measure(ctx, ProduceKgo, i, bytes, b, func(ctx context.Context) (int64, time.Duration, error) {
			return bytes, 0, produceKgo(ctx, cl, value, perRound, r.prog)
		})
		if err != nil {
			return err
		}
		ks = append(ks, s)
	}
	r.add(ProduceKgo, KindBroker, ks, RawNetToFile,
		fmt.Sprintf("%d rounds of %d records of %d B, one client with kgo's defaults otherwise (10 ms linger, 1 request in flight); bytes are record values (batch framing not counted); client CPU includes batching",
			r.cfg.Rounds, perRound, len(value)))
	return nil
}

// fetch warms the page cache, connections and buffers with one unmeasured
// pass of the broker path and of its raw baseline, then alternates Rounds
// measured rounds of Conns connections reading the preloaded range from
// broker b with rounds of the raw baseline.
func (r *runner) fetch(ctx context.Context, b *Broker, name string, useTLS bool, rawName string, files []string, mode string) error {
	addr, tlsCfg := b.PlainAddr, (*tls.Config)(nil)
	if useTLS {
		addr, tlsCfg = b.TLSAddr, r.clientTLS
	}
	conns := make([]*kconn, 0, r.cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range r.cfg.Conns {
		c, err := dialKafka(ctx, addr, tlsCfg)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()
	chunk := r.cfg.RawChunk
	if mode == peerSendfile {
		chunk = int(r.cfg.FetchMaxBytes) // one call per fetch-sized range, like the broker
	}
	peer, err := r.startPeer(ctx, rawPeerSpec{Mode: mode, Files: files, Chunk: chunk, ReadBuf: int(r.cfg.FetchMaxBytes), Conns: r.cfg.Conns})
	if err != nil {
		return fmt.Errorf("bench: %s: %w", rawName, err)
	}
	defer peer.Close()

	r.prog.begin(name+" (warm-up)", 0)
	if _, err := fetchLoad(ctx, conns, benchTopic, r.cfg.FetchMaxBytes, r.end, 0, 1, r.prog); err != nil {
		return fmt.Errorf("bench: %s warm-up: %w", name, err)
	}
	r.prog.begin(rawName+" (warm-up)", 0)
	if _, _, err := peer.fetchRound(ctx, 0, 1, r.prog); err != nil {
		return fmt.Errorf("bench: %s warm-up: %w", rawName, err)
	}
	wantPath := map[string]string{FetchSendfile: "sendfile", FetchCopy: "copy", FetchTLS: "tls"}[name]
	before, err := b.FetchBytes(ctx, wantPath)
	if err != nil {
		return err
	}
	var fs, rs []sample
	var clientBytes int64
	for i := range r.cfg.Rounds {
		s, err := r.measure(ctx, name, i, 0, b, func(ctx context.Context) (int64, time.Duration, error) {
			n, err := fetchLoad(ctx, conns, benchTopic, r.cfg.FetchMaxBytes, r.end, r.cfg.Duration, r.cfg.MaxPasses, r.prog)
			return n, 0, err
		})
		if err != nil {
			return err
		}
		fs = append(fs, s)
		clientBytes += s.bytes
		s, err = r.measure(ctx, rawName, i, 0, peer, func(ctx context.Context) (int64, time.Duration, error) {
			return peer.fetchRound(ctx, r.cfg.Duration, r.cfg.MaxPasses, r.prog)
		})
		if err != nil {
			return err
		}
		rs = append(rs, s)
	}
	// The broker's own counter proves which write path served the rounds.
	after, err := b.FetchBytes(ctx, wantPath)
	if err != nil {
		return err
	}
	if sent := int64(after - before); sent < clientBytes {
		return fmt.Errorf("bench: %s: broker counted %d bytes on write path %q, the client read %d", name, sent, wantPath, clientBytes)
	}
	r.add(name, KindBroker, fs, rawName, fmt.Sprintf("%d connection(s), Fetch v%d, MaxBytes %d, MaxWait 0, one request in flight per connection; sluice_fetch_bytes_total{path=%q} confirms the path",
		r.cfg.Conns, fetchVersion, r.cfg.FetchMaxBytes, wantPath))
	last := &r.rep.Results[len(r.rep.Results)-1]
	last.Conns = r.cfg.Conns
	if name == FetchTLS {
		last.GoalPctOfBaseline = 85 // the TLS goal: at least 85% of a raw crypto/tls copy
	}
	r.add(rawName, KindRaw, rs, "", fmt.Sprintf("sender process over %d segment file(s), %d B per call; this process reads %d B at a time; %d connection(s)",
		len(files), chunk, r.cfg.FetchMaxBytes, r.cfg.Conns))
	r.rep.Results[len(r.rep.Results)-1].Conns = r.cfg.Conns
	return nil
}
