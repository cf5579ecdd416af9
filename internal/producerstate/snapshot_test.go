package producerstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
)

// sampleState returns a state exercising every field: full and partial
// retention windows, epochs -1 and max, sequence wrap, transactional flags,
// extreme timestamps. Its batches all end below offset 1000.
func sampleState() *State {
	s := New()
	leo := int64(0)
	add := func(pid int64, epoch int16, seq, n int32, ts int64, txn bool) {
		s.Update(NewBatchMeta(pid, epoch, seq, leo, n-1, ts, txn))
		leo += int64(n)
	}
	for i := range int32(8) {
		add(1, 0, i*3, 3, 1_700_000_000_000+int64(i), i%2 == 0)
	}
	add(math.MaxInt64, math.MaxInt16, math.MaxInt32-1, 4, math.MaxInt64, false)
	add(0, -1, 5, 1, math.MinInt64, true)
	add(42, 7, 0, 100, -1, false)
	add(42, 7, 100, 1, 0, false)
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		state  *State
		offset int64
	}{
		{"empty", New(), 0},
		{"empty at high offset", New(), math.MaxInt64},
		{"sample", sampleState(), 1000},
		{"sample at max offset", sampleState(), math.MaxInt64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := tc.state.AppendSnapshot(nil, tc.offset)
			if err != nil {
				t.Fatalf("AppendSnapshot: %v", err)
			}
			if len(enc) != tc.state.SnapshotSize() {
				t.Fatalf("len = %d, SnapshotSize = %d", len(enc), tc.state.SnapshotSize())
			}
			got, off, err := DecodeSnapshot(enc)
			if err != nil {
				t.Fatalf("DecodeSnapshot(%x) = %v", enc, err)
			}
			if off != tc.offset {
				t.Fatalf("offset = %d, want %d", off, tc.offset)
			}
			if !reflect.DeepEqual(got.Producers(), tc.state.Producers()) {
				t.Fatalf("decoded producers = %+v, want %+v", got.Producers(), tc.state.Producers())
			}
			re, err := got.AppendSnapshot([]byte("prefix"), tc.offset)
			if err != nil || !bytes.Equal(re[6:], enc) || string(re[:6]) != "prefix" {
				t.Fatalf("re-encoding differs: %v", err)
			}
			var buf bytes.Buffer
			if err := tc.state.WriteSnapshot(&buf, tc.offset); err != nil {
				t.Fatalf("WriteSnapshot: %v", err)
			}
			got2, off2, err := ReadSnapshot(&buf)
			if err != nil || off2 != tc.offset || !reflect.DeepEqual(got2.Producers(), tc.state.Producers()) {
				t.Fatalf("ReadSnapshot = %v, %d, %v", got2, off2, err)
			}
		})
	}
}

func TestSnapshotDecodedStateBehaves(t *testing.T) {
	s := sampleState()
	enc, err := s.AppendSnapshot(nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := DecodeSnapshot(enc)
	if err != nil {
		t.Fatal(err)
	}
	// Producer 1 wrote sequences 0..23 in batches of 3; the last five batches
	// (sequences 9..23) are duplicates after reload, older ones are not.
	p, _ := s.Producer(1)
	for _, b := range p.Batches {
		d, err := got.Check(b)
		if err != nil || d == nil || d.FirstOffset != b.FirstOffset || d.LastOffset != b.LastOffset || d.Timestamp != b.MaxTimestamp {
			t.Fatalf("Check(%+v) after reload = %+v, %v; want duplicate", b, d, err)
		}
	}
	if _, err := got.Check(NewBatchMeta(1, 0, 6, 2000, 2, 0, false)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("Check of evicted batch after reload = %v, want ErrOutOfOrderSequence", err)
	}
	if _, err := got.Check(NewBatchMeta(1, 0, 24, 2000, 0, 0, false)); err != nil {
		t.Fatalf("Check of next batch after reload = %v", err)
	}
	// Producer MaxInt64 wrote MaxInt32-1, MaxInt32, 0, 1.
	if _, err := got.Check(NewBatchMeta(math.MaxInt64, math.MaxInt16, 2, 2000, 0, 0, false)); err != nil {
		t.Fatalf("Check after wrap after reload = %v", err)
	}
}

func TestAppendSnapshotRejectsInconsistentState(t *testing.T) {
	cases := []struct {
		name   string
		batch  []BatchMeta
		offset int64
	}{
		{"negative offset", nil, -1},
		{"batch at offset", []BatchMeta{NewBatchMeta(1, 0, 0, 10, 0, 0, false)}, 10},
		{"batch across offset", []BatchMeta{NewBatchMeta(1, 0, 0, 8, 4, 0, false)}, 10},
		{"negative first offset", []BatchMeta{NewBatchMeta(1, 0, 0, -1, 0, 0, false)}, 10},
		{"inverted batch", []BatchMeta{{ProducerID: 1, FirstOffset: 5, LastOffset: 4}}, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			for _, b := range tc.batch {
				s.Update(b)
			}
			out, err := s.AppendSnapshot([]byte("keep"), tc.offset)
			if !errors.Is(err, ErrSnapshotState) {
				t.Fatalf("AppendSnapshot error = %v, want ErrSnapshotState", err)
			}
			if string(out) != "keep" {
				t.Fatalf("AppendSnapshot left %q in dst, want the original prefix", out)
			}
			if err := s.WriteSnapshot(io.Discard, tc.offset); !errors.Is(err, ErrSnapshotState) {
				t.Fatalf("WriteSnapshot error = %v, want ErrSnapshotState", err)
			}
		})
	}
}

func mustEncode(t testing.TB, s *State, offset int64) []byte {
	t.Helper()
	b, err := s.AppendSnapshot(nil, offset)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotEveryTruncationIsCorrupt(t *testing.T) {
	enc := mustEncode(t, sampleState(), 1000)
	for n := range len(enc) {
		if _, _, err := DecodeSnapshot(enc[:n]); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("DecodeSnapshot(first %d of %d bytes) = %v, want ErrCorruptSnapshot", n, len(enc), err)
		}
		if _, _, err := ReadSnapshot(bytes.NewReader(enc[:n])); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("ReadSnapshot(first %d of %d bytes) = %v, want ErrCorruptSnapshot", n, len(enc), err)
		}
	}
	if _, _, err := DecodeSnapshot(append(enc, 0)); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("DecodeSnapshot with a trailing byte = %v, want ErrCorruptSnapshot", err)
	}
}

func TestSnapshotEveryBitFlipIsCorrupt(t *testing.T) {
	enc := mustEncode(t, sampleState(), 1000)
	buf := make([]byte, len(enc))
	for i := range len(enc) * 8 {
		copy(buf, enc)
		buf[i/8] ^= 1 << (i % 8)
		if _, _, err := DecodeSnapshot(buf); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("DecodeSnapshot with bit %d flipped = %v, want ErrCorruptSnapshot", i, err)
		}
	}
}

func TestSnapshotRandomDamageIsCorrupt(t *testing.T) {
	seed := uint64(20261125)
	rng := rand.New(rand.NewPCG(seed, seed))
	enc := mustEncode(t, sampleState(), 1000)
	buf := make([]byte, len(enc))
	for iter := range 20000 {
		copy(buf, enc)
		flips := 2 + rng.IntN(8)
		for range flips {
			buf[rng.IntN(len(buf))] ^= byte(1 + rng.IntN(255))
		}
		if bytes.Equal(buf, enc) {
			continue // the flips cancelled out
		}
		n := len(buf)
		if rng.IntN(4) == 0 {
			n = rng.IntN(len(buf))
		}
		if _, _, err := DecodeSnapshot(buf[:n]); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("seed %d iteration %d: DecodeSnapshot(%x) = %v, want ErrCorruptSnapshot", seed, iter, buf[:n], err)
		}
	}
}

// reCRC fixes the trailing CRC of a tampered snapshot so that the structural
// checks, not the CRC, must catch the damage.
func reCRC(b []byte) []byte {
	n := len(b) - snapshotTrailerSize
	binary.BigEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

func TestSnapshotStructuralChecks(t *testing.T) {
	one := New()
	one.Update(NewBatchMeta(5, 1, 0, 10, 2, 0, false))
	two := one.Clone()
	two.Update(NewBatchMeta(9, 1, 0, 13, 0, 0, false))
	const (
		p0    = snapshotHeaderSize                        // first producer record
		b0    = p0 + producerHeaderSize                   // its first batch
		p1    = b0 + batchRecordSize                      // second producer record
		flag0 = b0 + batchRecordSize - 1                  // first batch's flags
		last0 = b0 + 16                                   // first batch's last offset
		count = 16                                        // producer count
		ver   = 4                                         // version
		hflag = 6                                         // header flags
		soff  = 8                                         // snapshot offset
		nb0   = p0 + 10                                   // first producer's batch count
		_     = p1 + producerHeaderSize + batchRecordSize // end of second producer
	)
	cases := []struct {
		name   string
		state  *State
		tamper func(b []byte) []byte
	}{
		{"bad magic", one, func(b []byte) []byte { b[0] = 'X'; return b }},
		{"future version", one, func(b []byte) []byte { b[ver+1] = 2; return b }},
		{"header flags", one, func(b []byte) []byte { b[hflag+1] = 1; return b }},
		{"negative offset", one, func(b []byte) []byte { b[soff] = 0x80; return b }},
		{"offset below batch", one, func(b []byte) []byte { binary.BigEndian.PutUint64(b[soff:], 12); return b }},
		{"zero batches", one, func(b []byte) []byte { b[nb0] = 0; return b }},
		{"six batches", one, func(b []byte) []byte { b[nb0] = 6; return b }},
		{"unknown batch flag", one, func(b []byte) []byte { b[flag0] = 2; return b }},
		{"inverted batch", one, func(b []byte) []byte { binary.BigEndian.PutUint64(b[last0:], 9); return b }},
		{"count too high", one, func(b []byte) []byte { b[count+3] = 2; return b }},
		{"count too low", two, func(b []byte) []byte { b[count+3] = 1; return b }},
		{"duplicate producer", two, func(b []byte) []byte { copy(b[p1:p1+8], b[p0:p0+8]); return b }},
		{"unsorted producers", two, func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[p0:], 9)
			binary.BigEndian.PutUint64(b[p1:], 5)
			return b
		}},
		{"negative producer id", one, func(b []byte) []byte { b[p0] = 0xff; return b }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := mustEncode(t, tc.state, 20)
			if _, _, err := DecodeSnapshot(enc); err != nil {
				t.Fatalf("untampered: %v", err)
			}
			bad := reCRC(tc.tamper(enc))
			if s, _, err := DecodeSnapshot(bad); !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("DecodeSnapshot(%x) = %v, %v; want ErrCorruptSnapshot", bad, s, err)
			}
		})
	}
}

func TestSnapshotHugeCountAllocatesLittle(t *testing.T) {
	h := []byte("SLPS\x00\x01\x00\x00")
	h = binary.BigEndian.AppendUint64(h, 100)
	h = binary.BigEndian.AppendUint32(h, math.MaxUint32)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, _, err := DecodeSnapshot(h); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("DecodeSnapshot(%x) = %v, want ErrCorruptSnapshot", h, err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("10 decodes of a header claiming 2^32-1 producers allocated %d bytes", d)
	}
}

// errReader returns its data, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadSnapshotIOError(t *testing.T) {
	enc := mustEncode(t, sampleState(), 1000)
	ioErr := errors.New("disk on fire")
	for _, n := range []int{0, 10, len(enc) / 2, len(enc)} {
		_, _, err := ReadSnapshot(&errReader{data: enc[:n], err: ioErr})
		if !errors.Is(err, ioErr) || errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("ReadSnapshot after %d bytes then I/O error = %v; want the I/O error, not corruption", n, err)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(mustEncode(f, New(), 0))
	f.Add(mustEncode(f, sampleState(), 1000))
	one := New()
	one.Update(NewBatchMeta(5, 1, 0, 10, 2, 0, true))
	f.Add(mustEncode(f, one, 20))
	f.Add([]byte("SLPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, off, err := DecodeSnapshot(data)
		s2, off2, err2 := ReadSnapshot(bytes.NewReader(data))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("DecodeSnapshot err %v, ReadSnapshot err %v", err, err2)
		}
		if err != nil {
			if !errors.Is(err, ErrCorruptSnapshot) || !errors.Is(err2, ErrCorruptSnapshot) {
				t.Fatalf("errors %v / %v do not wrap ErrCorruptSnapshot", err, err2)
			}
			return
		}
		if off != off2 || !reflect.DeepEqual(s.Producers(), s2.Producers()) {
			t.Fatal("DecodeSnapshot and ReadSnapshot disagree")
		}
		// The format is canonical: an accepted input re-encodes to itself.
		re, err := s.AppendSnapshot(nil, off)
		if err != nil {
			t.Fatalf("re-encoding an accepted snapshot: %v", err)
		}
		if !bytes.Equal(re, data) {
			t.Fatalf("re-encoding %x gave %x", data, re)
		}
	})
}
