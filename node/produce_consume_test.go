package node

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// makeRecords builds n records with distinct keys, values, headers and millisecond timestamps.
func makeRecords(topic string, n int, tag string) []*kgo.Record {
	base := time.UnixMilli(1_700_000_000_000)
	out := make([]*kgo.Record, n)
	for i := range out {
		r := &kgo.Record{
			Topic:     topic,
			Key:       fmt.Appendf(nil, "%s-key-%d", tag, i),
			Value:     bytes.Repeat(fmt.Appendf(nil, "%s-value-%d;", tag, i), 1+i%7),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			Headers: []kgo.RecordHeader{
				{Key: "h1", Value: fmt.Appendf(nil, "v%d", i)},
				{Key: "empty", Value: nil},
			},
		}
		if i%5 == 0 {
			r.Key = nil // null key
		}
		out[i] = r
	}
	return out
}

// consumeAll reads exactly len(want) records of topic from offset 0 and compares each in order.
func consumeAll(t *testing.T, cl *kgo.Client, want []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(got), len(want))
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s-%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	if len(got) != len(want) {
		t.Fatalf("consumed %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Offset != int64(i) {
			t.Fatalf("record %d: offset %d", i, g.Offset)
		}
		if !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) {
			t.Fatalf("record %d: key %q, want %q", i, g.Key, w.Key)
		}
		if !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("record %d: value %q, want %q", i, g.Value, w.Value)
		}
		if !g.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("record %d: timestamp %v, want %v", i, g.Timestamp, w.Timestamp)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, j, g.Headers[j].Key, g.Headers[j].Value,
					w.Headers[j].Key, w.Headers[j].Value)
			}
		}
	}
}

func TestProduceConsume(t *testing.T) {
	e := startNode(t, "", nil)
	cases := []struct {
		name  string
		tls   bool
		acks  kgo.Acks
		idem  bool
		codec kgo.CompressionCodec
	}{
		{"plain/idempotent", false, kgo.AllISRAcks(), true, kgo.NoCompression()},
		{"plain/acks1", false, kgo.LeaderAck(), false, kgo.SnappyCompression()},
		{"plain/acks0", false, kgo.NoAck(), false, kgo.NoCompression()},
		{"tls/idempotent", true, kgo.AllISRAcks(), true, kgo.ZstdCompression()},
		{"tls/acks1", true, kgo.LeaderAck(), false, kgo.Lz4Compression()},
		{"tls/acks0", true, kgo.NoAck(), false, kgo.GzipCompression()},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("pc-%d", i)
			e.createTopic(topic, 1, nil)
			opts := []kgo.Opt{kgo.RequiredAcks(tc.acks), kgo.ProducerBatchCompression(tc.codec), kgo.ProducerLinger(0)}
			if !tc.idem {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			if tc.acks == kgo.NoAck() {
				// Keep acks=0 batches in order: without responses kgo cannot detect reordering.
				opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(1))
			}
			prod := e.client(tc.tls, opts...)
			want := makeRecords(topic, 300, tc.name)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Several produce calls so the log holds many batches.
			for start := 0; start < len(want); start += 50 {
				if err := prod.ProduceSync(ctx, want[start:start+50]...).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
			}
			if tc.acks != kgo.NoAck() {
				for i, r := range want {
					if r.Offset != int64(i) {
						t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
					}
				}
			}
			for _, consumeTLS := range []bool{false, true} {
				cons := e.client(consumeTLS, kgo.ConsumeTopics(topic),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
				consumeAll(t, cons, want)
			}
		})
	}
	// The counters move right after the response is written, possibly after the client has it.
	for _, path := range []string{"sendfile", "tls"} {
		waitFor(t, path+" fetch bytes", func() bool {
			return counterValue(t, e.n, "sluice_fetch_bytes_total", map[string]string{"path": path}) > 0
		})
	}
}

// TestDisableSendfile consumes over plaintext through the copy path.
func TestDisableSendfile(t *testing.T) {
	e := startNode(t, "", func(c *Config) { c.DisableSendfile = true })
	e.createTopic("copy", 1, nil)
	want := makeRecords("copy", 100, "copy")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.client(false).ProduceSync(ctx, want...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumeAll(t, e.client(false, kgo.ConsumeTopics("copy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), want)
	waitFor(t, "copy fetch bytes", func() bool {
		return counterValue(t, e.n, "sluice_fetch_bytes_total", map[string]string{"path": "copy"}) > 0
	})
	if v := counterValue(t, e.n, "sluice_fetch_bytes_total", map[string]string{"path": "sendfile"}); v != 0 {
		t.Errorf("sendfile fetch bytes = %v, want 0", v)
	}
}

// TestAutoCreate produces to an unknown topic with auto-creation on, and checks it is refused when off.
func TestAutoCreate(t *testing.T) {
	e := startNode(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := makeRecords("auto-created", 10, "auto")
	if err := e.client(false, kgo.AllowAutoTopicCreation()).ProduceSync(ctx, want...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumeAll(t, e.client(true, kgo.ConsumeTopics("auto-created"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), want)

	off := startNode(t, "", func(c *Config) { c.AutoCreateTopics = false })
	cl := off.client(false, kgo.AllowAutoTopicCreation(), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(2*time.Second))
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "nope", Value: []byte("x")}).FirstErr()
	if err == nil {
		t.Fatal("produce to unknown topic with auto-creation off succeeded")
	}
	if off.n.registry().get("nope") != nil {
		t.Fatal("topic created although AutoCreateTopics is off")
	}
}
