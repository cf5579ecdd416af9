package node

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A non-Produce frame above MaxNonProduceFrameBytes is refused from its API
// key, before the body arrives; a Produce frame of the same size is read.
func TestNonProduceFrameCap(t *testing.T) {
	e := startNode(t, "", func(c *Config) { c.MaxNonProduceFrameBytes = 64 << 10 })
	const size = 100 << 10

	// Metadata (key 3) announcing 100 KiB: only the size and the key are sent.
	r := e.dialRaw(false)
	hdr := binary.BigEndian.AppendUint32(nil, size)
	hdr = binary.BigEndian.AppendUint16(hdr, 3)
	if err := r.send(hdr); err != nil {
		t.Fatal(err)
	}
	r.expectClosed()

	// Produce of 100 KiB is within MaxFrameBytes: the broker reads it and answers
	// (the padding after a valid request body is ignored, as Kafka's parser does).
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(7)
	req.Acks = 1
	req.TimeoutMillis = 1000
	frame := encodeRequest(req, 1)
	frame = append(frame, make([]byte, size-(len(frame)-4))...)
	binary.BigEndian.PutUint32(frame, size)
	p := e.dialRaw(false)
	if err := p.send(frame); err != nil {
		t.Fatal(err)
	}
	got, err := p.readFrame(10 * time.Second)
	if err != nil {
		t.Fatalf("produce of %d bytes: %v", size, err)
	}
	if corr := int32(binary.BigEndian.Uint32(got)); corr != 1 {
		t.Fatalf("correlation id %d", corr)
	}
}

// The node-wide queue of unanswered request bytes admits an oversized frame
// alone, accounts for it while it is read, and releases it afterwards.
func TestQueuedRequestBytes(t *testing.T) {
	e := startNode(t, "", func(c *Config) { c.MaxQueuedRequestBytes = 64 << 10 })
	a := e.dialRaw(false)
	const size = 100 << 10
	partial := binary.BigEndian.AppendUint32(nil, size)
	partial = append(partial, make([]byte, 1000)...)
	if err := a.send(partial); err != nil {
		t.Fatal(err)
	}
	waitQueued := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.n.queued.mu.Lock()
			got := e.n.queued.total
			e.n.queued.mu.Unlock()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queued request bytes %d, want %d", got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitQueued(size + 4) // admitted although larger than the bound: nothing else was queued
	a.c.Close()          // the peer goes away mid-frame
	waitQueued(0)
	b := e.dialRaw(false)
	resp := kmsg.NewPtrApiVersionsResponse()
	decodeResponse(t, b.request(kmsg.NewPtrApiVersionsRequest()), resp)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions after release: %+v", resp)
	}
}
