package batchtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// decodeRecords splits a records section into kmsg records.
func decodeRecords(t *testing.T, body []byte, n int) []kmsg.Record {
	t.Helper()
	var out []kmsg.Record
	for i := 0; i < n; i++ {
		l, w := binary.Varint(body)
		if w <= 0 || int(l)+w > len(body) {
			t.Fatalf("record %d: bad length prefix", i)
		}
		var r kmsg.Record
		if err := r.ReadFrom(body[:w+int(l)]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out = append(out, r)
		body = body[w+int(l):]
	}
	if len(body) != 0 {
		t.Fatalf("%d bytes after %d records", len(body), n)
	}
	return out
}

func TestBuildDecodesWithKmsg(t *testing.T) {
	b := Build(
		BaseOffset(5), LeaderEpoch(3), Timestamp(1000), Producer(7, 2, 11),
		Record([]byte("k"), []byte("v"), Header{Key: "h", Value: []byte("x")}),
		RecordAt(9, nil, []byte("w")),
	)
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if rb.FirstOffset != 5 || rb.PartitionLeaderEpoch != 3 || rb.Magic != 2 || rb.NumRecords != 2 ||
		rb.LastOffsetDelta != 1 || rb.FirstTimestamp != 1000 || rb.MaxTimestamp != 1009 ||
		rb.ProducerID != 7 || rb.ProducerEpoch != 2 || rb.FirstSequence != 11 {
		t.Fatalf("header = %+v", rb)
	}
	if int(rb.Length)+12 != len(b) {
		t.Fatalf("length %d for %d bytes", rb.Length, len(b))
	}
	if got := uint32(rb.CRC); got != crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatalf("crc %08x wrong", got)
	}
	recs := decodeRecords(t, rb.Records, 2)
	if string(recs[0].Key) != "k" || string(recs[0].Value) != "v" || len(recs[0].Headers) != 1 ||
		recs[0].Headers[0].Key != "h" || string(recs[0].Headers[0].Value) != "x" {
		t.Fatalf("record 0 = %+v", recs[0])
	}
	if recs[1].Key != nil || string(recs[1].Value) != "w" || recs[1].TimestampDelta64 != 9 || recs[1].OffsetDelta != 1 {
		t.Fatalf("record 1 = %+v", recs[1])
	}
}

func TestGzip(t *testing.T) {
	b := Build(Gzip(), Values("a", "b", "c"))
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if rb.Attributes&7 != CodecGzip {
		t.Fatalf("attributes %x", rb.Attributes)
	}
	zr, err := gzip.NewReader(bytes.NewReader(rb.Records))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeRecords(t, raw, 3)
	if string(recs[2].Value) != "c" {
		t.Fatalf("record 2 = %+v", recs[2])
	}
}

// kmsgBatch encodes a batch with franz-go's kmsg encoders.
func kmsgBatch(baseTs int64, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.TimestampDelta64 = int64(i)
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		r.Length = int32(len(r.AppendTo(nil)) - 1) // everything after the (1-byte, zero) length
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.Length = int32(61 - 12 + len(recs))
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.LastOffsetDelta = int32(len(values) - 1)
	rb.FirstTimestamp = baseTs
	rb.MaxTimestamp = baseTs + int64(len(values)-1)
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = int32(len(values))
	rb.Records = recs
	b := rb.AppendTo(nil)
	Reseal(b)
	return b
}

func TestBuildMatchesKmsgEncoding(t *testing.T) {
	want := kmsgBatch(DefaultTimestamp, "a", "bb", "ccc")
	got := Build(Values("a", "bb", "ccc"))
	if !bytes.Equal(got, want) {
		t.Fatalf("Build = %x\nkmsg  = %x", got, want)
	}
}
