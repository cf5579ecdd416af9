package node

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batchtest"
)

// BenchmarkFetch measures whole fetch round trips of 8 MiB of records (128 batches of 64 KiB) through
// a real node over loopback: sendfile (plaintext), copy (plaintext, DisableSendfile) and TLS.
//
//	go test -run '^$' -bench BenchmarkFetch -benchtime 2s ./node
func BenchmarkFetch(b *testing.B) {
	for _, path := range []string{pathSendfile, pathCopy, pathTLS} {
		b.Run(path, func(b *testing.B) {
			e := startBenchNode(b, path == pathCopy)
			batch := batchtest.Build(batchtest.Filler(64, 1000))
			raw := e.dialRaw(false)
			for range 128 {
				if p := raw.produceRaw(9, "bench", 0, append([]byte(nil), batch...)); p.ErrorCode != 0 {
					b.Fatalf("produce: %d", p.ErrorCode)
				}
			}
			conn := e.dialRaw(path == pathTLS)
			req := fetchRequest(12, "bench", [16]byte{}, 0, 0, 64<<20, fetchPart{0, 0, 64 << 20})
			var frameBytes int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				conn.corr++
				if err := conn.send(encodeRequest(req, conn.corr)); err != nil {
					b.Fatal(err)
				}
				var size [4]byte
				if _, err := io.ReadFull(conn.br, size[:]); err != nil {
					b.Fatal(err)
				}
				n := int64(binary.BigEndian.Uint32(size[:]))
				if _, err := io.CopyN(io.Discard, conn.br, n); err != nil {
					b.Fatal(err)
				}
				frameBytes = n + 4
			}
			b.SetBytes(frameBytes)
		})
	}
}

func startBenchNode(b *testing.B, disableSendfile bool) *testEnv {
	b.Helper()
	cfg, clientTLS := testConfig(b, b.TempDir())
	cfg.DisableSendfile = disableSendfile
	cfg.Logger = nil
	e := startWith(b, cfg, clientTLS)
	if _, _, _, _, err := e.n.createTopic(context.Background(), createSpec{name: "bench", partitions: 1, rf: -1}, false); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkProduce measures Produce round trips of one 64 KiB batch (64 records) through a real node
// over plaintext loopback (acks=-1, durability never).
//
//	go test -run '^$' -bench BenchmarkProduce -benchtime 2s ./node
func BenchmarkProduce(b *testing.B) {
	e := startBenchNode(b, false)
	batch := batchtest.Build(batchtest.Filler(64, 1000))
	raw := e.dialRaw(false)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		raw.corr++
		if err := raw.send(encodeRequest(req, raw.corr)); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.readFrame(10 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
