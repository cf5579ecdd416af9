package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzParseRequest feeds arbitrary frames to ParseRequest, seeded with real
// requests of every API (default and group) at several versions.
//
// Properties: no panic — and in particular no panic recovered from kmsg's
// decoder, which would mean the recover in readBody is load-bearing; every
// failure is one of the typed errors; a successful parse re-encodes to a
// frame that parses to the same encoding again (a fixed point).
func FuzzParseRequest(f *testing.F) {
	for _, seed := range seedRequests() {
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0x05, 0x01, 0x80})
	all := DefaultVersions()
	if err := all.Enable(GroupAPIs()...); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, parse := range []func([]byte) (Request, error){ParseRequest, all.ParseRequest} {
			req, err := parse(frame)
			if err != nil {
				if errors.Is(err, errDecodePanic) {
					t.Fatalf("kmsg decoder panicked on %x: %v", frame, err)
				}
				var uv *UnsupportedVersionError
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownAPI) && !errors.As(err, &uv) {
					t.Fatalf("untyped error %v", err)
				}
				if req.Msg != nil {
					t.Fatalf("Msg set alongside error %v", err)
				}
				continue
			}
			if req.Msg.Key() != req.Key || req.Msg.GetVersion() != req.Version || req.Msg.IsFlexible() != req.Flexible {
				t.Fatalf("header %+v disagrees with msg %T v%d", req.Header, req.Msg, req.Msg.GetVersion())
			}
			once := encodeRequest(req.Msg, req.CorrelationID, req.ClientID)
			again, err := parse(once)
			if err != nil {
				t.Fatalf("re-encoded request %x does not parse: %v", once, err)
			}
			twice := encodeRequest(again.Msg, again.CorrelationID, again.ClientID)
			if !bytes.Equal(once, twice) {
				t.Fatalf("encoding not stable:\n%x\n%x", once, twice)
			}
		}
	})
}

// FuzzReadFrame reads frames from an arbitrary stream with an arbitrary
// limit. Properties: no panic; a frame never exceeds the limit and always
// has the length its prefix announced; errors are typed or io.EOF; the
// reused buffer gives the same bytes as a fresh one.
func FuzzReadFrame(f *testing.F) {
	f.Add(sized([]byte("hello")), int32(0))
	f.Add(append(sized([]byte("a")), sized([]byte("bb"))...), int32(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, int32(10))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1}, int32(0))
	f.Add([]byte{0, 0, 0, 9, 1, 2}, int32(100))
	f.Fuzz(func(t *testing.T, stream []byte, maxBytes int32) {
		limit := maxBytes
		if limit <= 0 {
			limit = DefaultMaxFrameBytes
		}
		fresh := bytes.NewReader(stream)
		reused := bytes.NewReader(stream)
		buf := make([]byte, 16)
		for {
			a, errA := ReadFrame(fresh, maxBytes, nil)
			b, errB := ReadFrame(reused, maxBytes, buf)
			if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
				t.Fatalf("fresh %x/%v vs reused %x/%v", a, errA, b, errB)
			}
			if errA != nil {
				if errA != io.EOF && !errors.Is(errA, ErrTruncatedFrame) && !errors.Is(errA, ErrFrameTooLarge) && !errors.Is(errA, ErrNegativeFrame) {
					t.Fatalf("untyped error %v", errA)
				}
				return
			}
			if len(a) > int(limit) {
				t.Fatalf("frame of %d bytes over limit %d", len(a), limit)
			}
			consumed := len(stream) - fresh.Len()
			start := consumed - len(a) - 4
			if got := binary.BigEndian.Uint32(stream[start:]); int(got) != len(a) {
				t.Fatalf("prefix says %d, frame has %d", got, len(a))
			}
		}
	})
}

// FuzzFetchPieces builds Fetch responses from fuzz bytes and checks the
// hand-written encoder against kmsg byte for byte, as the table test does for
// chosen shapes.
func FuzzFetchPieces(f *testing.F) {
	files := newTestFiles(f)
	f.Add([]byte{12, 1, 2, 0, 5, 0x80, 0x7f, 3, 1, 200, 9})
	f.Add([]byte{4, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{16, 0xff, 0x81, 0x7e, 3}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fetchFromBytes(data, files)
		if err := r.Validate(); err != nil {
			t.Fatalf("generated response invalid: %v", err)
		}
		pieces, total := r.Pieces(nil)
		got := materialize(t, pieces)
		if want := kmsgFrame(t, &r); !bytes.Equal(got, want) {
			t.Fatalf("v%d differs from kmsg\n got %x\nwant %x", r.Version, got, want)
		}
		if total != int64(len(got)) {
			t.Fatalf("total %d, frame %d", total, len(got))
		}
	})
}

// fetchFromBytes turns arbitrary bytes into a valid FetchResponse.
func fetchFromBytes(data []byte, files testFiles) FetchResponse {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	big := func() int64 { return int64(next())<<8 | int64(next()) }
	str := func() string { return string(bytes.Repeat([]byte{'x'}, int(big()%300))) }
	r := FetchResponse{
		Version:        FetchMinVersion + int16(next())%(FetchMaxVersion-FetchMinVersion+1),
		CorrelationID:  int32(big()) - 1000,
		ThrottleMillis: int32(next()),
		ErrorCode:      int16(next()),
		SessionID:      int32(big()),
	}
	for range int(next() % 4) {
		tp := FetchTopic{Topic: str(), TopicID: [16]byte{next(), next()}}
		for range int(next()) % 140 {
			p := NewFetchPartition(int32(big()))
			flags := next()
			p.ErrorCode = int16(flags & 3)
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = big(), big()-5, big()
			p.PreferredReadReplica = int32(next()) - 1
			if flags&4 != 0 {
				p.DivergingEpoch = &EpochEndOffset{Epoch: int32(next()), EndOffset: big()}
			}
			if flags&8 != 0 {
				p.CurrentLeader = &LeaderIDAndEpoch{LeaderID: int32(next()) - 1, LeaderEpoch: int32(next())}
			}
			if flags&16 != 0 {
				p.RecordsNull = true
			} else {
				for range int(flags>>5) % 4 {
					file, size := files.a, int64(40000)
					if next()&1 == 1 {
						file, size = files.b, 1000
					}
					pos := big() % size
					p.Records = append(p.Records, FileRange{File: file, Pos: pos, Len: big() % (size - pos + 1)})
				}
			}
			tp.Partitions = append(tp.Partitions, p)
		}
		r.Topics = append(r.Topics, tp)
	}
	for range int(next() % 3) {
		e := NodeEndpoint{NodeID: int32(next()), Host: str(), Port: int32(big())}
		if next()&1 == 1 {
			rack := str()
			e.Rack = &rack
		}
		r.NodeEndpoints = append(r.NodeEndpoints, e)
	}
	return r
}
