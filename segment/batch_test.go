package segment

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sluice-io/sluice/internal/batchtest"
)

func TestValidateBatch(t *testing.T) {
	good := batchtest.Build(batchtest.Values("a", "b", "c"), batchtest.Producer(9, 1, 0))
	edit := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	resealed := func(f func(b []byte)) []byte {
		return edit(func(b []byte) []byte { f(b); batchtest.Reseal(b); return b })
	}
	tests := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"valid", good, 0, nil},
		{"valid at limit", good, len(good), nil},
		{"empty", nil, 0, ErrCorrupt},
		{"short header", good[:HeaderSize-1], 0, ErrCorrupt},
		{"truncated body", good[:len(good)-1], 0, ErrCorrupt},
		{"trailing byte", append(append([]byte(nil), good...), 0), 0, ErrCorrupt},
		{"length below header", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }), 0, ErrCorrupt},
		{"negative length", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 0xffffff00); return b }), 0, ErrCorrupt},
		{"length past buffer", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 1<<30); return b }), 0, ErrCorrupt},
		{"too large", good, len(good) - 1, ErrTooLarge},
		{"huge length too large", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 1<<30); return b }), 1 << 20, ErrTooLarge},
		{"magic 1", edit(func(b []byte) []byte { b[16] = 1; return b }), 0, ErrUnsupportedMagic},
		{"magic 3", edit(func(b []byte) []byte { b[16] = 3; return b }), 0, ErrUnsupportedMagic},
		{"bad crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 0, ErrCorrupt},
		{"crc field flipped", edit(func(b []byte) []byte { b[17] ^= 0x80; return b }), 0, ErrCorrupt},
		{"negative count", resealed(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 0xffffffff) }), 0, ErrInvalidRecord},
		{"count mismatch", resealed(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 2) }), 0, ErrInvalidRecord},
		{"negative delta", resealed(func(b []byte) { binary.BigEndian.PutUint32(b[23:], 0xffffffff) }), 0, ErrInvalidRecord},
		{"count cannot fit", resealed(func(b []byte) {
			binary.BigEndian.PutUint32(b[57:], 1000)
			binary.BigEndian.PutUint32(b[23:], 999)
		}), 0, ErrInvalidRecord},
		{"codec 5", resealed(func(b []byte) { b[22] |= 5 }), 0, ErrUnsupportedCodec},
		{"codec 7", resealed(func(b []byte) { b[22] |= 7 }), 0, ErrUnsupportedCodec},
		{"zstd bits accepted", resealed(func(b []byte) { b[22] = 4 }), 0, nil},
		{"negative base offset", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b, 1<<63); return b }), 0, ErrInvalidRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ValidateBatch(tc.b, tc.max)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("ValidateBatch(%x) = %v, want %v", tc.b, err, tc.want)
			}
			if err == nil && (h.Size() != len(tc.b) || h.Magic != 2) {
				t.Fatalf("header %+v for %d bytes", h, len(tc.b))
			}
		})
	}
}

func TestHeaderFields(t *testing.T) {
	b := batchtest.Build(batchtest.BaseOffset(100), batchtest.LeaderEpoch(4), batchtest.Timestamp(5000),
		batchtest.Producer(77, 3, 12), batchtest.Attributes(batchtest.CodecLZ4|batchtest.AttrTransactional),
		batchtest.RecordAt(0, nil, []byte("x")), batchtest.RecordAt(30, nil, []byte("y")))
	h, err := ValidateBatch(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{BaseOffset: 100, BatchLength: int32(len(b) - 12), PartitionLeaderEpoch: 4, Magic: 2, CRC: h.CRC,
		Attributes: 3 | 0x10, LastOffsetDelta: 1, BaseTimestamp: 5000, MaxTimestamp: 5030, ProducerID: 77,
		ProducerEpoch: 3, BaseSequence: 12, NumRecords: 2}
	if h != want {
		t.Fatalf("header = %+v, want %+v", h, want)
	}
	if h.LastOffset() != 101 || h.Codec() != CodecLZ4 || !h.Transactional() || h.Control() || h.LogAppendTime() {
		t.Fatalf("accessors wrong for %+v", h)
	}
	if _, err := ParseHeader(b[:60]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ParseHeader(short) = %v", err)
	}
}

func TestValidateBatches(t *testing.T) {
	a := batchtest.Build(batchtest.Values("a"))
	b := batchtest.Build(batchtest.Values("b", "c"))
	hs, err := ValidateBatches(batchtest.Concat(a, b), 0)
	if err != nil || len(hs) != 2 || hs[1].NumRecords != 2 {
		t.Fatalf("ValidateBatches = %v, %v", hs, err)
	}
	if _, err := ValidateBatches(batchtest.Concat(a, b[:len(b)-3]), 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("torn second batch: %v", err)
	}
	if _, err := ValidateBatches(nil, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty: %v", err)
	}
}

// FuzzValidateBatch: arbitrary bytes never panic; anything accepted is
// exactly one framed batch whose CRC verifies, and re-validates the same.
func FuzzValidateBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ValidateBatch(b, 1<<20)
		if err == nil {
			if h.Size() != len(b) || h.Magic != 2 || h.NumRecords != h.LastOffsetDelta+1 {
				t.Fatalf("accepted inconsistent batch %+v (%d bytes)", h, len(b))
			}
		}
		hs, err2 := ValidateBatches(b, 1<<20)
		if (err == nil) != (err2 == nil) && err == nil {
			t.Fatalf("ValidateBatches rejects a valid single batch: %v", err2)
		}
		if err2 == nil {
			total := 0
			for _, h := range hs {
				total += h.Size()
			}
			if total != len(b) {
				t.Fatalf("batches cover %d of %d bytes", total, len(b))
			}
		}
	})
}

func seedBatches() [][]byte {
	return [][]byte{
		batchtest.Build(),
		batchtest.Build(batchtest.Values("a", "bb", "ccc"), batchtest.Producer(1, 0, 0)),
		batchtest.Build(batchtest.Record([]byte("key"), []byte("value"), batchtest.Header{Key: "h", Value: []byte("v")})),
		batchtest.Build(batchtest.Gzip(), batchtest.Filler(5, 40)),
		batchtest.Build(batchtest.Attributes(batchtest.AttrControl|batchtest.AttrTransactional), batchtest.Values("x")),
		batchtest.Concat(batchtest.Build(batchtest.Values("a")), batchtest.Build(batchtest.BaseOffset(1), batchtest.Values("b"))),
	}
}
