package bench

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchResponseV12 encodes a Fetch v12 response body with kmsg.
func fetchResponseV12(records []byte, hw int64, perr int16, aborted int) []byte {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = fetchVersion
	t := kmsg.NewFetchResponseTopic()
	t.Topic = "bench"
	p := kmsg.NewFetchResponseTopicPartition()
	p.Partition = 0
	p.ErrorCode = perr
	p.HighWatermark = hw
	p.LastStableOffset = hw
	p.LogStartOffset = 0
	p.PreferredReadReplica = -1
	for i := range aborted {
		a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		a.ProducerID = int64(i)
		a.FirstOffset = int64(i * 10)
		p.AbortedTransactions = append(p.AbortedTransactions, a)
	}
	p.RecordBatches = records
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp.AppendTo(nil)
}

func TestParseFetchV12(t *testing.T) {
	b, err := BuildBatch(8192, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	records := append(stamped(b.Bytes, 0), stamped(b.Bytes, int64(b.Records))...)
	for _, tc := range []struct {
		name    string
		records []byte
		perr    int16
		aborted int
	}{
		{"records", records, 0, 0},
		{"no records", nil, 0, 0},
		{"aborted txns", records, 0, 2},
		{"partition error", nil, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fetchResponseV12(tc.records, 1234, tc.perr, tc.aborted)
			p, err := parseFetchV12(body)
			if err != nil {
				t.Fatalf("parseFetchV12: %v", err)
			}
			if p.Err != tc.perr || p.HighWatermark != 1234 || !bytes.Equal(p.Records, tc.records) {
				t.Fatalf("parseFetchV12 = err %d hw %d %d record bytes; want %d, 1234, %d", p.Err, p.HighWatermark, len(p.Records), tc.perr, len(tc.records))
			}
		})
	}
}

func TestParseFetchV12TopLevelError(t *testing.T) {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = fetchVersion
	resp.ErrorCode = 70
	p, err := parseFetchV12(resp.AppendTo(nil))
	if err != nil || p.TopErr != 70 {
		t.Fatalf("parseFetchV12 = %+v, %v; want top-level error 70", p, err)
	}
}

func TestParseFetchV12Truncated(t *testing.T) {
	b, err := BuildBatch(4096, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	body := fetchResponseV12(b.Bytes, 10, 0, 1)
	// Every strict prefix that cuts before the records end must fail cleanly.
	recEnd := len(body) - 3 // partition tags, topic tags, response tags follow the records
	for i := 0; i < recEnd; i++ {
		_, err := parseFetchV12(body[:i])
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("parseFetchV12(body[:%d]) error = %v, want ErrProtocol", i, err)
		}
	}
}

func FuzzParseFetchV12(f *testing.F) {
	b, err := BuildBatch(1024, 50, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fetchResponseV12(b.Bytes, 5, 0, 0))
	f.Add(fetchResponseV12(nil, 0, 1, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseFetchV12(body)
		if err == nil && len(p.Records) > len(body) {
			t.Fatalf("records longer than the body")
		}
		batchSpan(p.Records)
	})
}

func TestResponseBody(t *testing.T) {
	frame := []byte{0, 0, 0, 7, 0, 'x'}
	body, err := responseBody(frame, 7, true)
	if err != nil || string(body) != "x" {
		t.Fatalf("responseBody flexible = %q, %v", body, err)
	}
	body, err = responseBody(frame, 7, false)
	if err != nil || len(body) != 2 {
		t.Fatalf("responseBody = %q, %v", body, err)
	}
	if _, err := responseBody(frame, 8, false); !errors.Is(err, ErrProtocol) {
		t.Fatalf("wrong correlation id: %v", err)
	}
	if _, err := responseBody(frame[:3], 7, false); !errors.Is(err, ErrProtocol) {
		t.Fatalf("short frame: %v", err)
	}
	// A tag section claiming more bytes than present.
	if _, err := responseBody([]byte{0, 0, 0, 7, 1, 0, 50}, 7, true); !errors.Is(err, ErrProtocol) {
		t.Fatalf("bad tags: %v", err)
	}
}
