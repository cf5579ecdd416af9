package fetch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/wire"
)

// TestWireFetchResponseRoundTrip sends frames built by wire.FetchResponse
// through both writers and decodes them with kmsg on the receiving end: the
// records of each partition must be the file bytes of its ranges.
func TestWireFetchResponseRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f1, d1 := testFile(t, dir, 3<<20, 21)
	f2, d2 := testFile(t, dir, 1<<20, 22)
	build := func(version int16) (*wire.FetchResponse, map[int32][]byte) {
		p0 := wire.NewFetchPartition(0)
		p0.HighWatermark = 10
		p0.Records = []wire.FileRange{{File: f1, Pos: 100, Len: 2 << 20}}
		p1 := wire.NewFetchPartition(1) // empty
		p2 := wire.NewFetchPartition(2)
		p2.Records = []wire.FileRange{{File: f2, Pos: 0, Len: 1000}, {File: f1, Pos: 5, Len: 300}}
		want := map[int32][]byte{
			0: d1[100 : 100+2<<20],
			1: nil,
			2: append(append([]byte(nil), d2[:1000]...), d1[5:305]...),
		}
		r := &wire.FetchResponse{
			Version:       version,
			CorrelationID: 77,
			Topics: []wire.FetchTopic{{
				Topic:      "events",
				TopicID:    [16]byte{1, 2, 3},
				Partitions: []wire.FetchPartition{p0, p1, p2},
			}},
		}
		return r, want
	}
	writers := []struct {
		name string
		send func(t *testing.T, pieces []wire.Piece) []byte
	}{
		{"sendfile", func(t *testing.T, pieces []wire.Piece) []byte {
			send, recv := tcpPair(t, 0)
			return sendAndReadFrame(t, recv, func() (int64, error) { return WriteSendfile(send, pieces) })
		}},
		{"copy-tls", func(t *testing.T, pieces []wire.Piece) []byte {
			send, recv := tlsPair(t)
			return sendAndReadFrame(t, recv, func() (int64, error) { return defaultCopier.WriteBuffered(send, pieces) })
		}},
	}
	for _, version := range []int16{4, 11, 12, 16} {
		for _, w := range writers {
			t.Run(fmt.Sprintf("v%d/%s", version, w.name), func(t *testing.T) {
				r, want := build(version)
				if err := r.Validate(); err != nil {
					t.Fatal(err)
				}
				pieces, total := r.Pieces(nil)
				frame := w.send(t, pieces)
				if int64(len(frame)) != total {
					t.Fatalf("frame of %d bytes, Pieces said %d", len(frame), total)
				}
				body := frame[4+4:] // size, correlation id
				if got := int32(binary.BigEndian.Uint32(frame[4:])); got != 77 {
					t.Fatalf("correlation id %d, want 77", got)
				}
				if version >= 12 {
					body = body[1:] // empty response-header tags
				}
				resp := kmsg.NewPtrFetchResponse()
				resp.Version = version
				if err := resp.ReadFrom(body); err != nil {
					t.Fatalf("kmsg decode: %v", err)
				}
				if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
					t.Fatalf("decoded %d topics, want 1 with 3 partitions", len(resp.Topics))
				}
				for _, p := range resp.Topics[0].Partitions {
					if !bytes.Equal(p.RecordBatches, want[p.Partition]) {
						t.Fatalf("partition %d: %d record bytes, want %d (or contents differ)", p.Partition, len(p.RecordBatches), len(want[p.Partition]))
					}
				}
			})
		}
	}
}

// sendAndReadFrame runs send while reading one size-prefixed frame from r.
func sendAndReadFrame(t *testing.T, r io.Reader, send func() (int64, error)) []byte {
	t.Helper()
	type result struct {
		frame []byte
		err   error
	}
	out := make(chan result, 1)
	go func() {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			out <- result{err: err}
			return
		}
		frame := make([]byte, 4+int(binary.BigEndian.Uint32(size[:])))
		copy(frame, size[:])
		_, err := io.ReadFull(r, frame[4:])
		out <- result{frame, err}
	}()
	n, err := send()
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	var res result
	select {
	case res = <-out:
	case <-time.After(60 * time.Second):
		t.Fatal("frame not received within 60s")
	}
	if res.err != nil {
		t.Fatalf("read frame: %v", res.err)
	}
	if n != int64(len(res.frame)) {
		t.Fatalf("writer reported %d bytes, frame is %d", n, len(res.frame))
	}
	return res.frame
}
