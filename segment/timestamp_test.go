package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/sluice-io/sluice/internal/batchtest"
)

// tsCodec compresses a plain records section the way one kind of client
// does, with the codec id it sets in the attributes.
type tsCodec struct {
	name     string
	id       int16
	compress func(t testing.TB, plain []byte) []byte
}

func tsCodecs() []tsCodec {
	return []tsCodec{
		{"none", batchtest.CodecNone, func(_ testing.TB, p []byte) []byte { return p }},
		{"gzip", batchtest.CodecGzip, nil}, // batchtest.Gzip compresses itself
		{"snappy-raw", batchtest.CodecSnappy, func(_ testing.TB, p []byte) []byte { return snappy.Encode(nil, p) }},
		{"snappy-xerial", batchtest.CodecSnappy, xerialSnappy},
		{"lz4", batchtest.CodecLZ4, lz4Frame},
		{"zstd", batchtest.CodecZstd, zstdFrame},
	}
}

// xerialSnappy frames p as snappy-java does, in 1 KiB chunks so that the
// test crosses chunk boundaries.
func xerialSnappy(_ testing.TB, p []byte) []byte {
	out := []byte(xerialMagic)
	out = binary.BigEndian.AppendUint32(out, 1) // version
	out = binary.BigEndian.AppendUint32(out, 1) // compatible version
	for len(p) > 0 {
		n := min(len(p), 1024)
		blk := snappy.Encode(nil, p[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		p = p[n:]
	}
	return out
}

func lz4Frame(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if _, err := w.Write(p); err != nil {
		t.Fatalf("lz4 write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("lz4 close: %v", err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(p); err != nil {
		t.Fatalf("gzip write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("gzip close: %v", err)
	}
	return buf.Bytes()
}

func zstdFrame(t testing.TB, p []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatalf("zstd writer: %v", err)
	}
	defer enc.Close()
	return enc.EncodeAll(p, nil)
}

// withRecords replaces the records section of an uncompressed batch b,
// sets codec bits and reseals the CRC.
func withRecords(b []byte, codec int16, records []byte) []byte {
	out := append([]byte(nil), b[:HeaderSize]...)
	out = append(out, records...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-lengthPrefix))
	attrs := int16(binary.BigEndian.Uint16(out[offAttributes:]))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs&^7|codec))
	batchtest.Reseal(out)
	return out
}

// codecBatch builds a batch with opts and compresses it with c.
func codecBatch(t testing.TB, c tsCodec, opts ...batchtest.Option) []byte {
	if c.compress == nil {
		return batchtest.Build(append(opts, batchtest.Gzip())...)
	}
	plain := batchtest.Build(opts...)
	return withRecords(plain, c.id, c.compress(t, plain[HeaderSize:]))
}

func TestOffsetForTimestampRecordExact(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 1000) // crosses read buffers and xerial chunks
	hdr := batchtest.Header{Key: "h", Value: []byte("hv")}
	for _, c := range tsCodecs() {
		t.Run(c.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), testConfig())
			// Offsets 0-3: rising timestamps 1000, 1010, 1020, 1030.
			mustAppend(t, l, codecBatch(t, c, batchtest.Timestamp(1000),
				batchtest.RecordAt(0, []byte("k0"), big),
				batchtest.RecordAt(10, nil, []byte("v1"), hdr),
				batchtest.RecordAt(20, []byte("k2"), big, hdr, hdr),
				batchtest.RecordAt(30, nil, nil)), 0)
			// Offsets 4-7: timestamps 2050, 2005, 2030, 2060 (not monotonic).
			mustAppend(t, l, codecBatch(t, c, batchtest.Timestamp(2000),
				batchtest.RecordAt(50, nil, []byte("a")),
				batchtest.RecordAt(5, []byte("k"), big),
				batchtest.RecordAt(30, nil, []byte("c"), hdr),
				batchtest.RecordAt(60, nil, []byte("d"))), 0)
			// Offsets 8-9: a batch whose base timestamp is above its first
			// record's (negative delta).
			mustAppend(t, l, codecBatch(t, c, batchtest.Timestamp(3000),
				batchtest.RecordAt(-10, nil, []byte("e")),
				batchtest.RecordAt(10, nil, []byte("f"))), 0)
			cases := []struct {
				target, off, ts int64
			}{
				{0, 0, 1000},    // before everything
				{1000, 0, 1000}, // exactly the first record
				{1001, 1, 1010}, // inside the first batch
				{1020, 2, 1020}, // exact, mid-batch
				{1025, 3, 1030}, // between records
				{1030, 3, 1030}, // the batch's max
				{1031, 4, 2050}, // between batches: first record in offset order >= target
				{2006, 4, 2050}, // a later record (2030) is nearer, but offset order wins
				{2051, 7, 2060}, // skips the non-monotonic middle
				{2060, 7, 2060}, // exact max of the batch
				{2061, 8, 2990}, // next batch, negative delta
				{2991, 9, 3010}, // its last record
				{3010, 9, 3010}, // the log's max timestamp
			}
			for _, tc := range cases {
				off, ts, ok := l.OffsetForTimestamp(tc.target)
				if !ok || off != tc.off || ts != tc.ts {
					t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, true", tc.target, off, ts, ok, tc.off, tc.ts)
				}
			}
			if off, ts, ok := l.OffsetForTimestamp(3011); ok || off != -1 || ts != -1 {
				t.Errorf("OffsetForTimestamp(after all) = %d, %d, %v; want -1, -1, false", off, ts, ok)
			}
		})
	}
}

func TestOffsetForTimestampAcrossSegments(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	l := openLog(t, t.TempDir(), cfg)
	zs := tsCodecs()[5]
	var next int64
	for i := 0; i < 200; i++ {
		base := int64(10_000 + 100*i)
		mustAppend(t, l, codecBatch(t, zs, batchtest.Timestamp(base), batchtest.Filler(5, 40)), 0)
		next += 5
	}
	if l.LogEndOffset() != next {
		t.Fatalf("LEO %d, want %d", l.LogEndOffset(), next)
	}
	// Filler records have timestamp deltas 0..4: batch i record j is at
	// offset 5i+j with timestamp 10000+100i+j.
	for i := int64(0); i < 200; i += 7 {
		for j := int64(0); j < 5; j++ {
			target := 10_000 + 100*i + j
			off, ts, ok := l.OffsetForTimestamp(target)
			if !ok || off != 5*i+j || ts != target {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d", target, off, ts, ok, 5*i+j)
			}
		}
		// Between batches: the next batch's first record.
		off, ts, ok := l.OffsetForTimestamp(10_000 + 100*i + 50)
		if i < 199 && (!ok || off != 5*(i+1) || ts != 10_000+100*(i+1)) {
			t.Fatalf("between batches %d: %d, %d, %v", i, off, ts, ok)
		}
	}
}

func TestOffsetForTimestampLogAppendTime(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, batch("x", 3, batchtest.Timestamp(100)), 0)
	b := batch("lat", 4, batchtest.Timestamp(5000), batchtest.Attributes(batchtest.AttrLogAppendTime))
	mustAppend(t, l, b, 0)
	// Every record of a LogAppendTime batch carries the max timestamp
	// (5003): the first record that qualifies is the batch's first.
	off, ts, ok := l.OffsetForTimestamp(5002)
	if !ok || off != 3 || ts != 5003 {
		t.Fatalf("OffsetForTimestamp(5002) = %d, %d, %v; want 3, 5003", off, ts, ok)
	}
}

func TestOffsetForTimestampCorruptRecordsFallBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	// A record claiming 70 MiB: above the scan limit, never read.
	var huge []byte
	huge = binary.AppendVarint(huge, 70<<20)
	huge = append(huge, 0, 0, 0, 2, 'v', 'v', 0)
	huge = append(huge, make([]byte, 32)...) // room for 3 records by size
	// A raw snappy block claiming 1 GiB of output.
	var bomb []byte
	bomb = binary.AppendUvarint(bomb, 1<<30)
	bomb = append(bomb, 0, 0, 0, 0)
	for _, c := range tsCodecs() {
		if c.compress == nil {
			c.compress = gzipBytes
		}
		bodies := map[string][]byte{
			"garbage-raw":        garbage,                // not a valid stream of the codec (except none)
			"garbage-compressed": c.compress(t, garbage), // a valid stream of garbage records
			"huge-record":        c.compress(t, huge),
			"truncated":          truncate(c.compress(t, batchtest.Build(batchtest.Values("a", "b", "c"))[HeaderSize:]), c.id == batchtest.CodecNone),
		}
		if c.id == batchtest.CodecSnappy {
			bodies["snappy-bomb"] = bomb
			bodies["xerial-bomb"] = append(append([]byte(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, byte(len(bomb))), bomb...)
			bodies["xerial-short"] = append([]byte(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 9)
		}
		for name, body := range bodies {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				l := openLog(t, t.TempDir(), testConfig())
				plain := batchtest.Build(batchtest.Timestamp(1000), batchtest.Values("a", "b", "c"))
				mustAppend(t, l, withRecords(plain, c.id, body), 0)
				// The last record (offset 2, timestamp 1002) is what the
				// walk would need; every body here hides it.
				off, ts, ok := l.OffsetForTimestamp(1002)
				if !ok || off != 0 || ts != 1002 {
					t.Fatalf("OffsetForTimestamp(1002) = %d, %d, %v; want batch fallback 0, 1002", off, ts, ok)
				}
			})
		}
	}
}

// truncate cuts the end of a section: the last 3 bytes of a plain one
// (the last record), half of a compressed one.
func truncate(b []byte, plain bool) []byte {
	if plain {
		return b[:len(b)-3]
	}
	return b[:len(b)/2]
}

func TestDecodeSnappyLimit(t *testing.T) {
	plain := bytes.Repeat([]byte("abcdefgh"), 4096)
	for _, enc := range [][]byte{snappy.Encode(nil, plain), xerialSnappy(t, plain)} {
		got, err := decodeSnappy(enc, len(plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("decodeSnappy at the limit: %d bytes, %v", len(got), err)
		}
		if _, err := decodeSnappy(enc, len(plain)-1); err == nil {
			t.Fatal("decodeSnappy above the limit succeeded")
		}
	}
}

// walkPlain runs the record walk over b as an uncompressed section.
func walkPlain(b []byte, lastOffsetDelta int32, ts int64) (int64, int64, bool) {
	return firstRecordAtOrAfter(bytes.NewReader(b), int64(len(b)), 100, 1000, lastOffsetDelta, ts)
}

func checkWalk(t *testing.T, b []byte, lastOffsetDelta int32, ts int64) {
	off, _, ok := walkPlain(b, lastOffsetDelta, ts)
	if ok && (off < 100 || off > 100+int64(lastOffsetDelta)) {
		t.Fatalf("walk returned offset %d outside [100, %d]", off, 100+int64(lastOffsetDelta))
	}
}

// TestRecordWalkRandomBytes feeds the record walk random and mutated
// sections: it must never panic and only return offsets inside the batch.
func TestRecordWalkRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	valid := batchtest.Build(batchtest.Timestamp(1000),
		batchtest.RecordAt(0, []byte("k"), []byte("v"), batchtest.Header{Key: "h", Value: []byte("x")}),
		batchtest.RecordAt(3, nil, []byte("vv")),
		batchtest.RecordAt(1, nil, nil))[HeaderSize:]
	if off, ts, ok := walkPlain(valid, 2, 1002); !ok || off != 101 || ts != 1003 {
		t.Fatalf("valid walk = %d, %d, %v", off, ts, ok)
	}
	for i := 0; i < 20000; i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, rng.IntN(64))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
		} else {
			b = append([]byte(nil), valid...)
			for k := 0; k < 1+rng.IntN(4); k++ {
				b[rng.IntN(len(b))] ^= byte(1 + rng.UintN(255))
			}
			b = b[:rng.IntN(len(b)+1)]
		}
		checkWalk(t, b, int32(rng.IntN(5))-1, int64(rng.IntN(20))+995)
		// The snappy decoder sees the same bytes, raw and xerial-framed.
		_, _ = decodeSnappy(b, 1<<16)
		_, _ = decodeSnappy(append([]byte(xerialMagic+"\x00\x00\x00\x01\x00\x00\x00\x01"), b...), 1<<16)
	}
}

func FuzzRecordWalk(f *testing.F) {
	f.Add(batchtest.Build(batchtest.Values("a", "b"))[HeaderSize:], int32(1), int64(0))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, int32(0), int64(5))
	f.Add([]byte{}, int32(-1), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, lastOffsetDelta int32, ts int64) {
		checkWalk(t, b, lastOffsetDelta, ts)
		_, _ = decodeSnappy(b, 1<<16)
	})
}

func TestRecordWalkBudget(t *testing.T) {
	sec := batchtest.Build(batchtest.Timestamp(1000), batchtest.Values("a", "b", "c"))[HeaderSize:]
	if off, ts, ok := firstRecordAtOrAfter(bytes.NewReader(sec), int64(len(sec)), 100, 1000, 2, 1002); !ok || off != 102 || ts != 1002 {
		t.Fatalf("full budget: %d, %d, %v", off, ts, ok)
	}
	// One byte short of the last record's prefix: the walk stops.
	if _, _, ok := firstRecordAtOrAfter(bytes.NewReader(sec), int64(len(sec))-6, 100, 1000, 2, 1002); ok {
		t.Fatal("walk read past its budget")
	}
}

func BenchmarkOffsetForTimestamp(b *testing.B) {
	for _, c := range []tsCodec{tsCodecs()[0], tsCodecs()[5]} {
		b.Run(c.name, func(b *testing.B) {
			l := openLog(b, b.TempDir(), testConfig())
			batch := codecBatch(b, c, batchtest.Timestamp(1000), batchtest.Filler(500, 100))
			mustAppend(b, l, batch, 0)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if off, _, ok := l.OffsetForTimestamp(1499); !ok || off != 499 {
					b.Fatalf("got %d, %v", off, ok)
				}
			}
		})
	}
}
