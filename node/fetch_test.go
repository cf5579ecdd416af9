package node

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/segment"
)

type fetchPart struct {
	partition int32
	offset    int64
	maxBytes  int32
}

func fetchRequest(version int16, topic string, id [16]byte, maxWait, minBytes, maxBytes int32, parts ...fetchPart) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	req.SessionID, req.SessionEpoch = 0, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, p.maxBytes
		rp.CurrentLeaderEpoch, rp.LogStartOffset, rp.LastFetchedEpoch = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// produceBatches writes n single-record batches (distinct sizes) to each partition of topic.
func produceBatches(t *testing.T, cl *kgo.Client, topic string, partitions int32, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		for p := range partitions {
			r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i),
				Value: bytes.Repeat([]byte{byte('a' + i%26)}, 10+i*7)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// countBatches parses a record set and returns the number of whole batches and their last offset.
func countBatches(t *testing.T, b []byte) (int, int64) {
	t.Helper()
	n, last := 0, int64(-1)
	for len(b) >= segment.HeaderSize {
		h, err := segment.ParseHeader(b)
		if err != nil || h.Size() > len(b) {
			break // a partial tail batch is legal
		}
		if _, err := segment.ValidateBatch(b[:h.Size()], 0); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		n++
		last = h.LastOffset()
		b = b[h.Size():]
	}
	return n, last
}

// TestFetchIdenticalOverListeners is the required check: the same fetch over the plaintext
// (sendfile) and TLS (copy) listeners yields byte-identical response frames.
func TestFetchIdenticalOverListeners(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("same", 2, nil)
	produceBatches(t, e.client(false, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)), "same", 2, 40)
	id := e.n.registry().get("same").id

	cases := []struct {
		name     string
		maxBytes int32
		parts    []fetchPart
	}{
		{"all", 1 << 20, []fetchPart{{0, 0, 1 << 20}, {1, 0, 1 << 20}}},
		{"mid-batch", 1 << 20, []fetchPart{{0, 7, 1 << 20}, {1, 13, 1 << 20}}},
		{"partition-limit", 1 << 20, []fetchPart{{0, 3, 300}, {1, 5, 40}}},
		{"response-limit", 500, []fetchPart{{0, 0, 1 << 20}, {1, 0, 1 << 20}}},
		{"tiny-limit-first-batch-whole", 1, []fetchPart{{0, 30, 1}, {1, 30, 1}}},
		{"at-end", 1 << 20, []fetchPart{{0, 40, 1 << 20}, {1, 39, 1 << 20}}},
		{"out-of-range", 1 << 20, []fetchPart{{0, 41, 1 << 20}, {1, 0, 1 << 20}, {7, 0, 100}}},
	}
	plain, secure := e.dialRaw(false), e.dialRaw(true)
	for _, v := range []int16{4, 7, 10, 11, 12, 13, 15, 16} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("v%d/%s", v, tc.name), func(t *testing.T) {
				req := fetchRequest(v, "same", id, 0, 0, tc.maxBytes, tc.parts...)
				a := plain.request(req)
				b := secure.request(req)
				if !bytes.Equal(a, b) {
					t.Fatalf("plaintext and TLS responses differ: %d vs %d bytes\n%x\n%x", len(a), len(b), a, b)
				}
				resp := kmsg.NewPtrFetchResponse()
				resp.Version = v
				decodeResponse(t, a, resp)
				if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(tc.parts) {
					t.Fatalf("response shape: %+v", resp.Topics)
				}
				var total int
				for i, p := range resp.Topics[0].Partitions {
					want := tc.parts[i]
					if p.Partition != want.partition {
						t.Fatalf("partition %d at %d", p.Partition, i)
					}
					switch {
					case want.partition > 1:
						if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
							t.Fatalf("partition %d: code %d", want.partition, p.ErrorCode)
						}
						continue
					case want.offset > 40:
						if p.ErrorCode != kerr.OffsetOutOfRange.Code {
							t.Fatalf("offset %d: code %d", want.offset, p.ErrorCode)
						}
						continue
					}
					if p.ErrorCode != 0 || p.HighWatermark != 40 || (v >= 5 && p.LogStartOffset != 0) {
						t.Fatalf("partition %d: code %d hw %d ls %d", p.Partition, p.ErrorCode, p.HighWatermark, p.LogStartOffset)
					}
					n, last := countBatches(t, p.RecordBatches)
					if total == 0 && want.offset < 40 && n == 0 {
						t.Fatalf("partition %d: no whole batch although it is the response's first (KIP-74)", p.Partition)
					}
					if n > 0 && last < want.offset {
						t.Fatalf("partition %d: last offset %d below fetch offset %d", p.Partition, last, want.offset)
					}
					if int32(len(p.RecordBatches)) > want.maxBytes && total > 0 {
						t.Fatalf("partition %d: %d bytes over partition limit %d", p.Partition, len(p.RecordBatches), want.maxBytes)
					}
					total += len(p.RecordBatches)
				}
				if resp.SessionID != 0 {
					t.Fatalf("session id %d, want 0", resp.SessionID)
				}
			})
		}
	}
}

func TestFetchSessionAndTopicIDErrors(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("s", 1, nil)
	raw := e.dialRaw(false)

	req := fetchRequest(12, "s", [16]byte{}, 0, 0, 1<<20, fetchPart{0, 0, 1 << 20})
	req.SessionID, req.SessionEpoch = 42, 3
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	decodeResponse(t, raw.request(req), resp)
	if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || resp.SessionID != 0 {
		t.Fatalf("incremental fetch: code %d session %d", resp.ErrorCode, resp.SessionID)
	}

	// A full fetch asking for a session (0, 0) is answered sessionless.
	req.SessionID, req.SessionEpoch = 0, 0
	decodeResponse(t, raw.request(req), resp)
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 {
		t.Fatalf("full fetch: code %d session %d topics %d", resp.ErrorCode, resp.SessionID, len(resp.Topics))
	}

	req = fetchRequest(13, "", [16]byte{1, 2, 3}, 0, 0, 1<<20, fetchPart{0, 0, 1 << 20})
	resp.Version = 13
	decodeResponse(t, raw.request(req), resp)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: code %d", p.ErrorCode)
	}

	// Fencing: a newer leader epoch than ours is UNKNOWN_LEADER_EPOCH.
	req = fetchRequest(12, "s", [16]byte{}, 0, 0, 1<<20, fetchPart{0, 0, 1 << 20})
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 5
	resp.Version = 12
	decodeResponse(t, raw.request(req), resp)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("future epoch: code %d", p.ErrorCode)
	}
}

// parkFetch sends a Fetch v16 for partition 0 of topic, from its high watermark, and waits until the
// broker has parked it. It returns that high watermark and the wake-up count before the fetch.
func (e *testEnv) parkFetch(t *testing.T, raw *rawConn, topic string, maxWait, minBytes int32) (int64, float64) {
	t.Helper()
	tp := e.n.registry().get(topic)
	hw := tp.parts[0].HighWatermark()
	wakeups := counterValue(t, e.n, "sluice_fetch_wakeups_total", nil)
	req := fetchRequest(16, "", tp.id, maxWait, minBytes, 1<<20, fetchPart{0, hw, 1 << 20})
	raw.corr++
	if err := raw.send(encodeRequest(req, raw.corr)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fetch parked", func() bool { return counterValue(t, e.n, "sluice_fetch_waiting", nil) == 1 })
	return hw, wakeups
}

// TestFetchLongPoll parks a fetch with a 10 s MaxWait on an empty partition, appends once the fetch
// is parked, and checks the fetch was woken by the append (not the timer) and carries the record.
func TestFetchLongPoll(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("lp", 1, nil)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			raw := e.dialRaw(useTLS)
			hw, wakeups := e.parkFetch(t, raw, "lp", 10_000, 1)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rec := &kgo.Record{Topic: "lp", Value: []byte("wake up")}
			if err := e.client(false).ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
			frame, err := raw.readFrame(15 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 16
			decodeResponse(t, frame, resp)
			p := resp.Topics[0].Partitions[0]
			if n, last := countBatches(t, p.RecordBatches); n != 1 || last != hw {
				t.Fatalf("woken fetch: %d batches, last offset %d (want 1, %d)", n, last, hw)
			}
			if got := counterValue(t, e.n, "sluice_fetch_wakeups_total", nil); got != wakeups+1 {
				t.Fatalf("wake-ups %v, want %v: the fetch was not woken by the append", got, wakeups+1)
			}
		})
	}
}

// A long-poll fetch woken by an append that does not reach MinBytes parks again, still registered
// with the partition (Rearm), and is answered by the next append.
func TestFetchLongPollRearm(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("lp2", 1, nil)
	raw := e.dialRaw(false)
	// One small record (a batch of about 70 bytes) does not satisfy MinBytes=100; a second does.
	_, wakeups := e.parkFetch(t, raw, "lp2", 30_000, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := e.client(false)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lp2", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fetch woken and parked again", func() bool {
		return counterValue(t, e.n, "sluice_fetch_wakeups_total", nil) == wakeups+1 &&
			counterValue(t, e.n, "sluice_fetch_waiting", nil) == 1
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lp2", Value: make([]byte, 100)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	frame, err := raw.readFrame(5 * time.Second) // well before the fetch's own 30 s wait
	if err != nil {
		t.Fatalf("the second append did not answer the parked fetch: %v", err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 16
	decodeResponse(t, frame, resp)
	if n, _ := countBatches(t, resp.Topics[0].Partitions[0].RecordBatches); n != 2 {
		t.Fatalf("fetch answered with %d batches, want 2", n)
	}
	if got := counterValue(t, e.n, "sluice_fetch_wakeups_total", nil); got != wakeups+2 {
		t.Fatalf("wake-ups %v, want %v", got, wakeups+2)
	}
}

// TestFetchLongPollShutdown checks a parked fetch is answered when the node shuts down.
func TestFetchLongPollShutdown(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("lps", 1, nil)
	raw := e.dialRaw(false)
	req := fetchRequest(12, "lps", [16]byte{}, 60_000, 1, 1<<20, fetchPart{0, 0, 1 << 20})
	raw.corr++
	if err := raw.send(encodeRequest(req, raw.corr)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fetch parked", func() bool { return counterValue(t, e.n, "sluice_fetch_waiting", nil) == 1 })
	done := make(chan error, 1)
	go func() { done <- e.n.Shutdown(context.Background()) }()
	frame, err := raw.readFrame(15 * time.Second)
	if err != nil {
		t.Fatalf("parked fetch not answered at shutdown: %v", err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	decodeResponse(t, frame, resp)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
