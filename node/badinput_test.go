package node

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batchtest"
	"github.com/sluice-io/sluice/segment"
)

func frameOf(body []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(len(body)))[:4:4]
}

func withFrame(body []byte) []byte { return append(frameOf(body), body...) }

// requestHeader returns an (unframed) request header for key/version with client id "bad".
func requestHeader(key, version int16, corr int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 3)
	return append(b, "bad"...)
}

// mutate returns a copy of b changed by f.
func mutate(b []byte, f func([]byte)) []byte {
	c := append([]byte(nil), b...)
	f(c)
	return c
}

func TestBadInput(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	e := startNode(t, "", func(c *Config) { c.MaxFrameBytes = 1 << 20 })
	e.createTopic("bad", 1, nil)
	e.createTopic("small", 1, map[string]*string{"max.message.bytes": ptr("200")})

	// Frame-level garbage: each connection must be closed without an answer (or, for a garbage body
	// that happens to decode, answered with its correlation id).
	type frameCase struct {
		name  string
		bytes func() []byte
		half  bool // close our write side after sending (truncation)
	}
	frameCases := []frameCase{
		{"negative size", func() []byte { return []byte{0x80, 0, 0, 1} }, false},
		{"minus one", func() []byte { return []byte{0xff, 0xff, 0xff, 0xff} }, false},
		{"huge size", func() []byte { return binary.BigEndian.AppendUint32(nil, uint32(e.cfg.MaxFrameBytes)+1) }, false},
		{"truncated size", func() []byte { return []byte{0, 0} }, true},
		{"truncated body", func() []byte {
			return append(binary.BigEndian.AppendUint32(nil, 500), make([]byte, 100)...)
		}, true},
		{"empty frame", func() []byte { return []byte{0, 0, 0, 0} }, false},
		{"short header", func() []byte { return withFrame([]byte{0, 3, 0}) }, false},
		{"unknown api 1000", func() []byte { return withFrame(requestHeader(1000, 0, 1)) }, false},
		{"unknown api -1", func() []byte { return withFrame(requestHeader(-1, 0, 1)) }, false},
		{"api not enabled (SaslHandshake)", func() []byte { return withFrame(requestHeader(17, 1, 1)) }, false},
		{"metadata v99", func() []byte { return withFrame(requestHeader(3, 99, 1)) }, false},
		{"produce v12", func() []byte { return withFrame(requestHeader(0, 12, 1)) }, false},
		{"metadata truncated body", func() []byte { return withFrame(append(requestHeader(3, 9, 1), 0, 5)) }, false},
		{"negative client id length", func() []byte { return withFrame([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xf0}) }, false},
	}
	for i := range 1500 {
		frameCases = append(frameCases, frameCase{fmt.Sprintf("garbage %d", i), func() []byte {
			body := make([]byte, 8+rng.IntN(200))
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
			if i%2 == 0 {
				// a real api key and version, garbage after the header
				keys := []int16{0, 1, 2, 3, 19, 20, 22, 23, 32, 37}
				copy(body, requestHeader(keys[rng.IntN(len(keys))], int16(rng.IntN(4)+4), 77)[:8])
			}
			return withFrame(body)
		}, false})
	}
	for i, fc := range frameCases {
		var c net.Conn
		var err error
		if i%5 == 4 { // every fifth case over TLS
			c, err = tls.Dial("tcp", e.n.Addrs().Client, e.tlsConf.Clone())
		} else {
			c, err = net.Dial("tcp", e.n.Addrs().ClientPlain)
		}
		if err != nil {
			t.Fatal(err)
		}
		raw := &rawConn{t: t, c: c, br: newReader(c)}
		b := fc.bytes()
		if err := raw.send(b); err != nil {
			t.Fatalf("%s: send: %v", fc.name, err)
		}
		if fc.half {
			_ = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		frame, err := raw.readFrame(10 * time.Second)
		switch {
		case err != nil:
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("%s: connection neither answered nor closed", fc.name)
			}
		case strings.HasPrefix(fc.name, "garbage") && len(b) >= 12 && binary.BigEndian.Uint32(frame) == binary.BigEndian.Uint32(b[8:12]):
			// garbage that decoded as a request and was answered: fine
		default:
			t.Fatalf("%s: got a %d-byte answer, want the connection closed", fc.name, len(frame))
		}
		c.Close()
	}

	for reason, min := range map[string]float64{"bad_frame": 5, "unknown_api": 3, "unsupported_version": 2, "malformed": 3} {
		waitFor(t, "close reason "+reason, func() bool {
			return counterValue(t, e.n, "sluice_connections_closed_total", map[string]string{"reason": reason}) >= min
		})
	}

	// ApiVersions with an unsupported version: a v0 UNSUPPORTED_VERSION answer listing the APIs.
	raw := e.dialRaw(false)
	raw.corr = 5
	if err := raw.send(withFrame(requestHeader(18, 99, 6))); err != nil {
		t.Fatal(err)
	}
	frame, err := raw.readFrame(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = 0
	decodeResponse(t, frame, av)
	if av.ErrorCode != kerr.UnsupportedVersion.Code || len(av.ApiKeys) == 0 || binary.BigEndian.Uint32(frame) != 6 {
		t.Fatalf("ApiVersions v99: code %d, %d keys", av.ErrorCode, len(av.ApiKeys))
	}

	// Produce-level checks: one connection, each request answered with the right code.
	good := batchtest.Build(batchtest.Values("a", "b", "c"))
	produce := func(version, acks int16, topic string, partition int32, records []byte) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = version, acks, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = partition, records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = version
		decodeResponse(t, raw.request(req), resp)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	be := binary.BigEndian
	codeCases := []struct {
		name    string
		version int16
		acks    int16
		topic   string
		part    int32
		records []byte
		want    *kerr.Error
	}{
		{"bad crc", 9, -1, "bad", 0, mutate(good, func(b []byte) { b[len(b)-1] ^= 0xff }), kerr.CorruptMessage},
		{"crc field", 9, -1, "bad", 0, mutate(good, func(b []byte) { b[17] ^= 1 }), kerr.CorruptMessage},
		{"wrong magic", 9, -1, "bad", 0, mutate(good, func(b []byte) { b[16] = 1 }), kerr.InvalidRecord},
		{"magic 3", 9, -1, "bad", 0, mutate(good, func(b []byte) { b[16] = 3; batchtest.Reseal(b) }), kerr.InvalidRecord},
		{"length too small", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint32(b[8:], 10) }), kerr.CorruptMessage},
		{"length too big", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint32(b[8:], uint32(len(b))) }), kerr.CorruptMessage},
		{"negative length", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint32(b[8:], 0xfffffff0) }), kerr.CorruptMessage},
		{"truncated batch", 9, -1, "bad", 0, good[:len(good)-3], kerr.CorruptMessage},
		{"header only", 9, -1, "bad", 0, good[:segment.HeaderSize-1], kerr.CorruptMessage},
		{"two batches", 9, -1, "bad", 0, batchtest.Concat(good, good), kerr.InvalidRecord},
		{"trailing junk", 9, -1, "bad", 0, append(append([]byte(nil), good...), 1, 2, 3), kerr.InvalidRecord},
		{"negative count", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint32(b[57:], 0xffffffff); batchtest.Reseal(b) }), kerr.InvalidRecord},
		{"count mismatch", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint32(b[57:], 5); batchtest.Reseal(b) }), kerr.InvalidRecord},
		{"delta mismatch", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint32(b[23:], 7); batchtest.Reseal(b) }), kerr.InvalidRecord},
		{"base offset", 9, -1, "bad", 0, mutate(good, func(b []byte) { be.PutUint64(b[0:], 12) }), kerr.InvalidRecord},
		{"control batch", 9, -1, "bad", 0, batchtest.Build(batchtest.Attributes(batchtest.AttrControl)), kerr.InvalidRecord},
		{"transactional", 9, -1, "bad", 0, batchtest.Build(batchtest.Attributes(batchtest.AttrTransactional), batchtest.Producer(1, 0, 0)), kerr.InvalidRecord},
		{"negative sequence", 9, -1, "bad", 0, batchtest.Build(batchtest.Producer(1, 0, -5)), kerr.InvalidRecord},
		{"codec 7", 9, -1, "bad", 0, batchtest.Build(batchtest.Attributes(7)), kerr.UnsupportedCompressionType},
		{"zstd before v7", 6, -1, "bad", 0, batchtest.Build(batchtest.Attributes(batchtest.CodecZstd)), kerr.UnsupportedCompressionType},
		{"too large", 9, -1, "small", 0, batchtest.Build(batchtest.Filler(5, 100)), kerr.MessageTooLarge},
		{"no records", 9, -1, "bad", 0, nil, kerr.InvalidRecord},
		{"acks 2", 9, 2, "bad", 0, good, kerr.InvalidRequiredAcks},
		{"produce v2", 2, -1, "bad", 0, good, kerr.UnsupportedVersion},
		{"unknown partition", 9, -1, "bad", 3, good, kerr.UnknownTopicOrPartition},
		{"invalid topic", 9, -1, "bad/topic", 0, good, kerr.InvalidTopicException},
	}
	for _, cc := range codeCases {
		if got := produce(cc.version, cc.acks, cc.topic, cc.part, cc.records); got != cc.want.Code {
			t.Errorf("%s: code %d (%v), want %v", cc.name, got, kerr.ErrorForCode(got), cc.want)
		}
	}
	// Thousands of single-byte corruptions of a valid batch. Every byte outside the partition leader
	// epoch (bytes 12-15, outside the CRC, stamped by the broker) must be refused.
	accepted := 0
	for i := range 3000 {
		pos := rng.IntN(len(good))
		if pos >= 12 && pos < 16 {
			pos = 16 + rng.IntN(len(good)-16)
		}
		bad := mutate(good, func(b []byte) { b[pos] ^= byte(1 + rng.IntN(255)) })
		if code := produce(int16(3+i%7), -1, "bad", 0, bad); code == 0 {
			t.Fatalf("corruption at byte %d accepted: %x", pos, bad)
		}
	}
	// Valid produces in between still work.
	for range 10 {
		if code := produce(9, -1, "bad", 0, good); code != 0 {
			t.Fatalf("valid batch refused: %d", code)
		}
		accepted += 3
	}

	// acks=0 with a corrupt batch: no answer, connection closed.
	raw0 := e.dialRaw(false)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 9, 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bad"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = mutate(good, func(b []byte) { b[30] ^= 1 })
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if err := raw0.send(encodeRequest(req, 1)); err != nil {
		t.Fatal(err)
	}
	raw0.expectClosed()

	// A well-behaved client still produces and consumes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := makeRecords("bad", 100, "after-abuse")
	cl := e.client(false, kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := cl.ProduceSync(ctx, want...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := 0
	cons := e.client(true, kgo.ConsumeTopics("bad"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got < accepted+len(want) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", got, accepted+len(want))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		got += len(fs.Records())
	}
	// Every batch in the log files is valid.
	e.shutdown()
	validateLogFiles(t, e.cfg.DataDir, int64(accepted+len(want)))
}

// validateLogFiles re-validates every batch of every segment file under dataDir and checks the total
// record count of the "bad" topic.
func validateLogFiles(t *testing.T, dataDir string, wantBadRecords int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var badRecords int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for pos := 0; pos < len(b); {
			h, err := segment.ParseHeader(b[pos:])
			if err != nil || h.Size() > len(b)-pos {
				t.Fatalf("%s at %d: %v", f, pos, err)
			}
			if _, err := segment.ValidateBatch(b[pos:pos+h.Size()], 0); err != nil {
				t.Fatalf("%s at %d: %v", f, pos, err)
			}
			if filepath.Base(filepath.Dir(f)) == "bad-0" {
				badRecords += int64(h.NumRecords)
			}
			pos += h.Size()
		}
	}
	if badRecords != wantBadRecords {
		t.Fatalf("log holds %d records, want %d", badRecords, wantBadRecords)
	}
}

// TestPipelinedOrder sends many requests without reading, with small in-flight limits configured,
// and checks every answer comes back in request order (by correlation id).
func TestPipelinedOrder(t *testing.T) {
	e := startNode(t, "", func(c *Config) { c.MaxInFlightRequests = 2; c.MaxInFlightBytes = 4096 })
	raw := e.dialRaw(false)
	const n = 2000
	errc := make(chan error, 1)
	go func() {
		var buf []byte
		for i := range n {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = int16(i % 13)
			if i%3 == 0 {
				buf = append(buf, encodeRequest(kmsg.NewPtrApiVersionsRequest(), int32(i))...)
			} else {
				buf = append(buf, encodeRequest(req, int32(i))...)
			}
			if len(buf) > 8192 || i == n-1 {
				if err := raw.send(buf); err != nil {
					errc <- err
					return
				}
				buf = buf[:0]
			}
		}
		errc <- nil
	}()
	for i := range n {
		frame, err := raw.readFrame(20 * time.Second)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if got := int32(binary.BigEndian.Uint32(frame)); got != int32(i) {
			t.Fatalf("response %d has correlation id %d", i, got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
