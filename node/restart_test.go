package node

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batchtest"
	"github.com/sluice-io/sluice/internal/fsutil"
)

// produceRaw sends one Produce (acks=-1 unless changed by the caller) with records for
// topic/partition and returns the partition's response.
func (r *rawConn) produceRaw(version int16, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	r.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	decodeResponse(r.t, r.request(req), resp)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		r.t.Fatalf("produce response shape: %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

func (r *rawConn) initProducerID() (int64, int16) {
	r.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.Version = 4
	decodeResponse(r.t, r.request(req), resp)
	if resp.ErrorCode != 0 {
		r.t.Fatalf("InitProducerId: code %d", resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func seqBatch(pid int64, epoch int16, seq int32, value string) []byte {
	return batchtest.Build(batchtest.Producer(pid, epoch, seq), batchtest.Values(value))
}

// checkProducerState asserts that the restarted node still knows the producer: a retry of a retained
// batch is answered with its original offset, a gap is refused, and the next sequence is accepted.
func checkProducerState(t *testing.T, e *testEnv, pid int64, epoch int16, next int32, offsets map[int32]int64) {
	t.Helper()
	raw := e.dialRaw(false)
	for seq, off := range offsets {
		p := raw.produceRaw(9, "idem", 0, seqBatch(pid, epoch, seq, "retry"))
		if p.ErrorCode != 0 || p.BaseOffset != off {
			t.Fatalf("retry of seq %d: code %d offset %d, want duplicate at %d", seq, p.ErrorCode, p.BaseOffset, off)
		}
	}
	if p := raw.produceRaw(9, "idem", 0, seqBatch(pid, epoch, next+5, "gap")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", p.ErrorCode)
	}
	if p := raw.produceRaw(9, "idem", 0, seqBatch(pid, epoch-1, next, "zombie")); epoch > 0 && p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch: code %d", p.ErrorCode)
	}
	if p := raw.produceRaw(9, "idem", 0, seqBatch(pid, epoch, next, "next")); p.ErrorCode != 0 {
		t.Fatalf("next sequence %d: code %d", next, p.ErrorCode)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	e1 := startNode(t, dir, nil)
	e1.createTopic("r", 2, nil)
	e1.createTopic("idem", 1, map[string]*string{"retention.ms": ptr("-1")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	prod := e1.client(false, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := makeRecords("r", 200, "restart")
	for _, r := range want {
		r.Partition = 1
	}
	if err := prod.ProduceSync(ctx, want...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	raw := e1.dialRaw(false)
	pid, epoch := raw.initProducerID()
	offsets := map[int32]int64{}
	for seq := range int32(8) {
		p := raw.produceRaw(9, "idem", 0, seqBatch(pid, epoch, seq, "v"))
		if p.ErrorCode != 0 {
			t.Fatalf("seq %d: code %d", seq, p.ErrorCode)
		}
		offsets[seq] = p.BaseOffset
	}
	// A duplicate before any restart.
	if p := raw.produceRaw(9, "idem", 0, seqBatch(pid, epoch, 7, "v")); p.ErrorCode != 0 || p.BaseOffset != offsets[7] {
		t.Fatalf("duplicate: %+v", p)
	}
	retained := map[int32]int64{3: offsets[3], 7: offsets[7]} // the last 5 batches are retained

	// An unclean copy of the data dir, taken while the node runs (no snapshot yet): the producer
	// state must come from replaying the log.
	crashDir := t.TempDir()
	copyDir(t, dir, crashDir)

	e1.shutdown()
	cfg2 := e1.cfg
	cfg2.Client.Addr, cfg2.ClientPlain.Addr, cfg2.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	e2 := startWith(t, cfg2, e1.tlsConf)
	consumeAll(t, e2.client(true, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"r": {1: kgo.NewOffset().At(0)}})), want)
	if o := e2.n.registry().get("r").parts[0].Log().LogEndOffset(); o != 0 {
		t.Fatalf("partition 0 end offset %d", o)
	}
	checkProducerState(t, e2, pid, epoch, 8, retained)
	// The producer continues with a fresh id on the restarted node, distinct from the old one.
	if pid2, _ := e2.dialRaw(false).initProducerID(); pid2 == pid {
		t.Fatalf("producer id %d handed out twice", pid2)
	}
	e2.shutdown()

	cfg3 := cfg2
	cfg3.DataDir = crashDir
	e3 := startWith(t, cfg3, e1.tlsConf)
	consumeAll(t, e3.client(false, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"r": {1: kgo.NewOffset().At(0)}})), want)
	checkProducerState(t, e3, pid, epoch, 8, retained)
}

// TestRestartIdempotentClient restarts the node under a running idempotent kgo producer (same
// address): the producer keeps its id and sequences, and every record is stored exactly once.
func TestRestartIdempotentClient(t *testing.T) {
	dir := t.TempDir()
	e1 := startNode(t, dir, nil)
	e1.createTopic("kr", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addrs := e1.n.Addrs()
	prod := e1.client(false, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	first := makeRecords("kr", 50, "before")
	if err := prod.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id1, ep1, err := prod.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e1.shutdown()

	cfg := e1.cfg
	cfg.ClientPlain.Addr = addrs.ClientPlain // same port: the producer reconnects
	cfg.Client.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	e2 := startWith(t, cfg, e1.tlsConf)
	second := makeRecords("kr", 50, "after")
	if err := prod.ProduceSync(ctx, second...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id2, ep2, err := prod.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 || ep1 != ep2 {
		t.Fatalf("producer id/epoch changed across restart: %d/%d -> %d/%d", id1, ep1, id2, ep2)
	}
	for i, r := range second {
		if r.Offset != int64(50+i) {
			t.Fatalf("record %d after restart at offset %d", i, r.Offset)
		}
	}
	all := append(first, second...)
	consumeAll(t, e2.client(false, kgo.ConsumeTopics("kr"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), all)
	st, _ := e2.n.registry().get("kr").parts[0].Producer(id2)
	if st.LastSequence() != 99 {
		t.Fatalf("producer state last sequence %d, want 99", st.LastSequence())
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A second broker on a data directory in use is refused before it touches anything, and the
// directory is free again once the first has shut down.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	e1 := startNode(t, dir, nil)
	cfg, _ := testConfig(t, dir)
	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = n2.Start(context.Background())
	if !errors.Is(err, fsutil.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second broker on %s: %v, want a data-dir-in-use error", dir, err)
	}
	e1.shutdown()
	n3, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n3.Start(context.Background()); err != nil {
		t.Fatalf("start after the first broker stopped: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n3.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
