package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sluice-io/sluice/segment"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBuildBatchValid(t *testing.T) {
	for _, tc := range []struct{ max, value int }{
		{1 << 20, 1024},
		{1<<20 + 12, 100},
		{4096, 0},
		{200, 10},
	} {
		b, err := BuildBatch(tc.max, tc.value, 1700000000000)
		if err != nil {
			t.Fatalf("BuildBatch(%d, %d): %v", tc.max, tc.value, err)
		}
		if len(b.Bytes) > tc.max {
			t.Fatalf("BuildBatch(%d, %d) = %d bytes, over the limit", tc.max, tc.value, len(b.Bytes))
		}
		h, err := segment.ValidateBatch(b.Bytes, 0)
		if err != nil {
			t.Fatalf("segment.ValidateBatch(BuildBatch(%d, %d)): %v", tc.max, tc.value, err)
		}
		if int(h.NumRecords) != b.Records || h.ProducerID != -1 || h.BaseTimestamp != 1700000000000 {
			t.Fatalf("header %+v, built %d records", h, b.Records)
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(b.Bytes); err != nil {
			t.Fatalf("kmsg decode: %v", err)
		}
		if int(kb.NumRecords) != b.Records || kb.Magic != 2 || kb.PartitionLeaderEpoch != -1 {
			t.Fatalf("kmsg batch %+v", kb)
		}
		// Walk the records with kmsg's record decoder.
		recs := kb.Records
		for i := 0; i < b.Records; i++ {
			l, n := binary.Varint(recs)
			if n <= 0 || int(l)+n > len(recs) {
				t.Fatalf("record %d: bad length", i)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if int(r.OffsetDelta) != i || r.Key != nil || len(r.Value) != tc.value || len(r.Headers) != 0 {
				t.Fatalf("record %d: delta %d key %v value %d bytes", i, r.OffsetDelta, r.Key, len(r.Value))
			}
			recs = recs[n+int(l):]
		}
		if len(recs) != 0 {
			t.Fatalf("%d bytes after the last record", len(recs))
		}
		if b.ValueBytes != int64(b.Records*tc.value) {
			t.Fatalf("ValueBytes %d, want %d", b.ValueBytes, b.Records*tc.value)
		}
	}
}

func TestBuildBatchFills(t *testing.T) {
	b, err := BuildBatch(1<<20, 1024, 0)
	if err != nil {
		t.Fatal(err)
	}
	// One more record must not fit.
	if rec := appendRecord(nil, b.Records, make([]byte, 1024)); len(b.Bytes)+len(rec) <= 1<<20 {
		t.Fatalf("batch of %d bytes leaves room for a %d-byte record", len(b.Bytes), len(rec))
	}
}

func TestBuildBatchTooSmall(t *testing.T) {
	for _, tc := range []struct{ max, value int }{{60, 0}, {70, 100}, {100, -1}} {
		if _, err := BuildBatch(tc.max, tc.value, 0); !errors.Is(err, ErrBatchTooSmall) {
			t.Errorf("BuildBatch(%d, %d) error = %v, want ErrBatchTooSmall", tc.max, tc.value, err)
		}
	}
}

// stamped returns a copy of batch with its base offset set, as a broker
// stores it.
func stamped(batch []byte, base int64) []byte {
	b := bytes.Clone(batch)
	binary.BigEndian.PutUint64(b, uint64(base))
	return b
}

func TestBatchSpan(t *testing.T) {
	b, err := BuildBatch(4096, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(b.Records)
	var set []byte
	for i := int64(0); i < 3; i++ {
		set = append(set, stamped(b.Bytes, 10+i*n)...)
	}
	size := len(b.Bytes)
	tests := []struct {
		name     string
		in       []byte
		wantN    int
		wantLast int64
		wantOK   bool
	}{
		{"three whole", set, 3 * size, 10 + 3*n - 1, true},
		{"partial tail", set[:2*size+100], 2 * size, 10 + 2*n - 1, true},
		{"tail shorter than a header", set[:size+30], size, 10 + n - 1, true},
		{"only partial", set[:size-1], 0, 0, false},
		{"empty", nil, 0, 0, false},
	}
	for _, tc := range tests {
		gotN, gotLast, gotOK := batchSpan(tc.in)
		if gotN != tc.wantN || gotLast != tc.wantLast || gotOK != tc.wantOK {
			t.Errorf("%s: batchSpan = %d, %d, %v; want %d, %d, %v", tc.name, gotN, gotLast, gotOK, tc.wantN, tc.wantLast, tc.wantOK)
		}
	}
	// A corrupt length below the header size stops the walk without panicking.
	bad := bytes.Clone(set)
	binary.BigEndian.PutUint32(bad[size+offBatchLength:], 3)
	if gotN, _, _ := batchSpan(bad); gotN != size {
		t.Errorf("corrupt second batch: batchSpan counted %d bytes, want %d", gotN, size)
	}
}
