package wal

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	cases := []Record{
		{Type: TypeEntry, Data: nil},
		{Type: TypeHardState, Data: []byte{1, 2, 3}},
		{Type: TypeSnapshot, Data: bytes.Repeat([]byte{0xab}, 1000)},
	}
	var buf []byte
	for _, r := range cases {
		buf = AppendRecord(buf, r)
	}
	off := 0
	for i, want := range cases {
		got, n, err := DecodeRecord(buf[off:], 0)
		if err != nil {
			t.Fatalf("record %d: DecodeRecord = %v", i, err)
		}
		if got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("record %d: got %v %x, want %v %x", i, got.Type, got.Data, want.Type, want.Data)
		}
		off += n
	}
	if off != len(buf) {
		t.Fatalf("consumed %d of %d bytes", off, len(buf))
	}
}

func TestRecordEveryCutIsTorn(t *testing.T) {
	b := AppendRecord(nil, Record{Type: TypeEntry, Data: []byte("hello, raft")})
	for cut := 0; cut < len(b); cut++ {
		_, _, err := DecodeRecord(b[:cut], 0)
		if !errors.Is(err, ErrTorn) {
			t.Fatalf("Decode(%x) = %v, want ErrTorn", b[:cut], err)
		}
	}
}

func TestRecordEveryBitFlipDetected(t *testing.T) {
	b := AppendRecord(nil, Record{Type: TypeEntry, Data: []byte("hello, raft")})
	for bit := 0; bit < len(b)*8; bit++ {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		_, _, err := DecodeRecord(c, 1<<20)
		if err == nil {
			t.Fatalf("flip of bit %d: Decode(%x) = nil error", bit, c)
		}
		if !errors.Is(err, ErrTorn) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip of bit %d: error %v is neither torn nor corrupt", bit, err)
		}
	}
}

func TestRecordLengthBound(t *testing.T) {
	b := AppendRecord(nil, Record{Type: TypeEntry, Data: make([]byte, 100)})
	if _, _, err := DecodeRecord(b, 50); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode over bound = %v, want ErrCorrupt", err)
	}
	zero := make([]byte, 16)
	if _, _, err := DecodeRecord(zero, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode(zeros) = %v, want ErrCorrupt", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Type: TypeEntry, Data: []byte("x")}))
	f.Add(AppendRecord(nil, Record{Type: TypeHardState, Data: make([]byte, 24)}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := DecodeRecord(b, 1<<16)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		again := AppendRecord(nil, rec)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encode %x != %x", again, b[:n])
		}
		// Payload decoders must not panic on anything that passes the CRC.
		switch rec.Type {
		case TypeEntry:
			_, _ = DecodeEntry(rec.Data)
		case TypeHardState:
			_, _ = DecodeHardState(rec.Data)
		case TypeSnapshot:
			_, _ = DecodeSnapshotMarker(rec.Data)
		}
	})
}
