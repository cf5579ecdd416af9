package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testFiles are real segment-like files with distinct byte patterns, so a
// range read from the wrong file or offset shows up as a mismatch.
type testFiles struct {
	a, b *os.File
}

func newTestFiles(t testing.TB) testFiles {
	t.Helper()
	dir := t.TempDir()
	mk := func(name string, size int, seed byte) *os.File {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7) ^ seed
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	return testFiles{a: mk("a.log", 40000, 0x5a), b: mk("b.log", 1000, 0xc3)}
}

// materialize concatenates the pieces, reading file ranges with ReadAt.
func materialize(t testing.TB, pieces []Piece) []byte {
	t.Helper()
	var out []byte
	for _, p := range pieces {
		if p.File == nil {
			out = append(out, p.Bytes...)
			continue
		}
		b := make([]byte, p.Len)
		if _, err := p.File.ReadAt(b, p.Pos); err != nil {
			t.Fatalf("read %s at %d len %d: %v", p.File.Name(), p.Pos, p.Len, err)
		}
		out = append(out, b...)
	}
	return out
}

func readRanges(t testing.TB, ranges []FileRange) []byte {
	t.Helper()
	out := []byte{}
	for _, fr := range ranges {
		b := make([]byte, fr.Len)
		if fr.Len > 0 {
			if _, err := fr.File.ReadAt(b, fr.Pos); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, b...)
	}
	return out
}

// toKmsg builds the equivalent kmsg response.
func toKmsg(t testing.TB, r *FetchResponse) *kmsg.FetchResponse {
	t.Helper()
	k := kmsg.NewPtrFetchResponse()
	k.Version = r.Version
	k.ThrottleMillis = r.ThrottleMillis
	k.ErrorCode = r.ErrorCode
	k.SessionID = r.SessionID
	for _, tp := range r.Topics {
		kt := kmsg.NewFetchResponseTopic()
		kt.Topic = tp.Topic
		kt.TopicID = tp.TopicID
		for _, p := range tp.Partitions {
			kp := kmsg.NewFetchResponseTopicPartition()
			kp.Partition = p.Partition
			kp.ErrorCode = p.ErrorCode
			kp.HighWatermark = p.HighWatermark
			kp.LastStableOffset = p.LastStableOffset
			kp.LogStartOffset = p.LogStartOffset
			kp.PreferredReadReplica = p.PreferredReadReplica
			if d := p.DivergingEpoch; d != nil {
				kp.DivergingEpoch.Epoch, kp.DivergingEpoch.EndOffset = d.Epoch, d.EndOffset
			}
			if l := p.CurrentLeader; l != nil {
				kp.CurrentLeader.LeaderID, kp.CurrentLeader.LeaderEpoch = l.LeaderID, l.LeaderEpoch
			}
			if !p.RecordsNull {
				kp.RecordBatches = readRanges(t, p.Records)
			}
			kt.Partitions = append(kt.Partitions, kp)
		}
		k.Topics = append(k.Topics, kt)
	}
	if r.Version >= 16 {
		for _, e := range r.NodeEndpoints {
			kb := kmsg.NewFetchResponseBroker()
			kb.NodeID, kb.Host, kb.Port, kb.Rack = e.NodeID, e.Host, e.Port, e.Rack
			k.Brokers = append(k.Brokers, kb)
		}
	}
	return k
}

// kmsgFrame is the reference encoding: AppendResponse around kmsg's AppendTo.
func kmsgFrame(t testing.TB, r *FetchResponse) []byte {
	return AppendResponse(nil, Header{Key: KeyFetch, Version: r.Version, CorrelationID: r.CorrelationID}, toKmsg(t, r))
}

func ptr[T any](v T) *T { return &v }

func fetchCases(f testFiles) []struct {
	name string
	r    FetchResponse
} {
	part := func(idx int32, hw int64, recs ...FileRange) FetchPartition {
		p := NewFetchPartition(idx)
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = hw, hw, 3
		p.Records = recs
		return p
	}
	withRecordLen := func(n int64) FetchResponse {
		return FetchResponse{CorrelationID: 9, Topics: []FetchTopic{{
			Topic: "len", TopicID: [16]byte{1, 2, 3}, Partitions: []FetchPartition{part(0, 77, FileRange{f.a, 11, n})},
		}}}
	}
	errPart := NewFetchPartition(4)
	errPart.ErrorCode = CodeNotLeaderOrFollower
	nullPart := NewFetchPartition(5)
	nullPart.RecordsNull = true
	diverged := part(1, 500)
	diverged.DivergingEpoch = &EpochEndOffset{Epoch: 3, EndOffset: 420}
	led := part(2, 600, FileRange{f.b, 0, 61})
	led.CurrentLeader = &LeaderIDAndEpoch{LeaderID: 2, LeaderEpoch: 7}
	both := part(3, 700)
	both.DivergingEpoch = &EpochEndOffset{Epoch: 0, EndOffset: 0}
	both.CurrentLeader = &LeaderIDAndEpoch{LeaderID: -1, LeaderEpoch: 9}
	replica := part(6, 10, FileRange{f.a, 0, 5})
	replica.PreferredReadReplica = 2

	cases := []struct {
		name string
		r    FetchResponse
	}{
		{"no topics", FetchResponse{CorrelationID: 1}},
		{"top-level error", FetchResponse{CorrelationID: -7, ThrottleMillis: 12, ErrorCode: CodeFetchSessionIDNotFound, SessionID: 0}},
		{"session and throttle", FetchResponse{CorrelationID: 1 << 30, ThrottleMillis: 1000, SessionID: 0x7fff0001}},
		{"empty partitions", FetchResponse{CorrelationID: 2, Topics: []FetchTopic{{Topic: "t", TopicID: [16]byte{9}}}}},
		{"several topics and partitions", FetchResponse{CorrelationID: 3, Topics: []FetchTopic{
			{Topic: "orders", TopicID: [16]byte{0xaa, 15: 0xbb}, Partitions: []FetchPartition{
				part(0, 100, FileRange{f.a, 0, 61}, FileRange{f.a, 61, 100}), // contiguous: merged
				part(1, 0),
				errPart,
				part(2, 1000, FileRange{f.a, 1000, 10}, FileRange{f.b, 3, 20}, FileRange{f.a, 5000, 0}, FileRange{f.a, 2000, 33}),
			}},
			{Topic: "", Partitions: []FetchPartition{nullPart}},
			{Topic: "äöü-unicode", TopicID: [16]byte{1, 1, 1}, Partitions: []FetchPartition{part(9, 9, FileRange{f.b, 900, 100})}},
		}}},
		{"errors only", FetchResponse{CorrelationID: 4, Topics: []FetchTopic{{Topic: "x", Partitions: []FetchPartition{errPart, errPart}}}}},
		{"diverging epoch and leader tags", FetchResponse{CorrelationID: 5, Topics: []FetchTopic{{Topic: "f", TopicID: [16]byte{7}, Partitions: []FetchPartition{diverged, led, both, replica}}}}},
		{"node endpoints", FetchResponse{CorrelationID: 6, NodeEndpoints: []NodeEndpoint{
			{NodeID: 1, Host: "broker-1.example", Port: 9092},
			{NodeID: 2, Host: "b2", Port: 19092, Rack: ptr("rack-a")},
			{NodeID: 3, Host: "", Port: 0, Rack: ptr("")},
		}, Topics: []FetchTopic{{Topic: "t", TopicID: [16]byte{2}, Partitions: []FetchPartition{led}}}}},
		{"long names cross varint widths", FetchResponse{CorrelationID: 10, NodeEndpoints: []NodeEndpoint{
			{NodeID: 1, Host: string(bytes.Repeat([]byte{'h'}, 127)), Port: 1, Rack: ptr(string(bytes.Repeat([]byte{'r'}, 200)))},
			{NodeID: 2, Host: string(bytes.Repeat([]byte{'h'}, 126)), Port: 2},
		}, Topics: []FetchTopic{
			{Topic: string(bytes.Repeat([]byte{'t'}, 126)), TopicID: [16]byte{4}, Partitions: []FetchPartition{part(0, 1)}},
			{Topic: string(bytes.Repeat([]byte{'u'}, 127)), TopicID: [16]byte{5}, Partitions: []FetchPartition{part(0, 1)}},
			{Topic: string(bytes.Repeat([]byte{'v'}, 20000)), TopicID: [16]byte{6}},
		}}},
		{"many partitions", FetchResponse{CorrelationID: 8, Topics: []FetchTopic{{Topic: "wide", TopicID: [16]byte{8}, Partitions: func() []FetchPartition {
			var ps []FetchPartition
			for i := range 130 { // 131 > 127: the compact array length takes two bytes
				ps = append(ps, part(int32(i), int64(i), FileRange{f.a, int64(i * 3), int64(i % 5)}))
			}
			return ps
		}()}}}},
	}
	for _, n := range []int64{0, 1, 126, 127, 128, 16382, 16383, 16384, 39000} {
		cases = append(cases, struct {
			name string
			r    FetchResponse
		}{fmt.Sprintf("records of %d bytes", n), withRecordLen(n)})
	}
	return cases
}

// TestFetchPiecesMatchKmsg is the encoder's contract: for every version and
// shape, the pieces put together are exactly what kmsg encodes.
func TestFetchPiecesMatchKmsg(t *testing.T) {
	f := newTestFiles(t)
	for v := FetchMinVersion; v <= FetchMaxVersion; v++ {
		for _, tc := range fetchCases(f) {
			t.Run(fmt.Sprintf("v%d/%s", v, tc.name), func(t *testing.T) {
				r := tc.r
				r.Version = v
				if err := r.Validate(); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				pieces, total := r.Pieces(nil)
				got := materialize(t, pieces)
				want := kmsgFrame(t, &r)
				if !bytes.Equal(got, want) {
					t.Fatalf("pieces differ from kmsg\n got %x\nwant %x", got, want)
				}
				if total != int64(len(got)) {
					t.Fatalf("total = %d, want %d", total, len(got))
				}
				checkPieceShape(t, pieces, &r)
				roundTrip(t, &r, got)
			})
		}
	}
}

// checkPieceShape asserts the coalescing promise: no empty pieces, no two
// Bytes pieces in a row, and at most one Bytes piece per record set plus one.
func checkPieceShape(t *testing.T, pieces []Piece, r *FetchResponse) {
	t.Helper()
	var bytesPieces, recordSets int
	for _, tp := range r.Topics {
		for _, p := range tp.Partitions {
			if recordsLen(&p) > 0 {
				recordSets++
			}
		}
	}
	for i, p := range pieces {
		if p.Size() == 0 {
			t.Fatalf("piece %d is empty", i)
		}
		if p.File == nil {
			bytesPieces++
			if i > 0 && pieces[i-1].File == nil {
				t.Fatalf("pieces %d and %d are both Bytes", i-1, i)
			}
		} else if i > 0 && pieces[i-1].File == p.File && pieces[i-1].Pos+pieces[i-1].Len == p.Pos {
			t.Fatalf("pieces %d and %d are contiguous ranges of one file", i-1, i)
		}
	}
	if bytesPieces > recordSets+1 {
		t.Fatalf("%d Bytes pieces for %d record sets", bytesPieces, recordSets)
	}
}

// roundTrip decodes the frame with kmsg and compares it with r.
func roundTrip(t *testing.T, r *FetchResponse, frame []byte) {
	t.Helper()
	if got := int(binary.BigEndian.Uint32(frame)); got != len(frame)-4 {
		t.Fatalf("size prefix %d, frame body %d", got, len(frame)-4)
	}
	if got := int32(binary.BigEndian.Uint32(frame[4:])); got != r.CorrelationID {
		t.Fatalf("correlation id %d, want %d", got, r.CorrelationID)
	}
	body := frame[8:]
	if r.Version >= 12 {
		if body[0] != 0 {
			t.Fatalf("response header tag byte %#x", body[0])
		}
		body = body[1:]
	}
	k := kmsg.NewPtrFetchResponse()
	k.Version = r.Version
	if err := k.ReadFrom(body); err != nil {
		t.Fatalf("kmsg ReadFrom: %v", err)
	}
	want := toKmsg(t, r)
	// kmsg decodes a null aborted-transactions array as nil, like ours.
	if k.ThrottleMillis != want.ThrottleMillis || k.ErrorCode != want.ErrorCode && r.Version >= 7 || len(k.Topics) != len(want.Topics) {
		t.Fatalf("decoded top level %+v, want %+v", k, want)
	}
	for i := range k.Topics {
		gt, wt := k.Topics[i], want.Topics[i]
		if r.Version <= 12 && gt.Topic != wt.Topic || r.Version >= 13 && gt.TopicID != wt.TopicID {
			t.Fatalf("topic %d: got %q/%x, want %q/%x", i, gt.Topic, gt.TopicID, wt.Topic, wt.TopicID)
		}
		if len(gt.Partitions) != len(wt.Partitions) {
			t.Fatalf("topic %d: %d partitions, want %d", i, len(gt.Partitions), len(wt.Partitions))
		}
		for j := range gt.Partitions {
			gp, wp := gt.Partitions[j], wt.Partitions[j]
			if gp.Partition != wp.Partition || gp.ErrorCode != wp.ErrorCode || gp.HighWatermark != wp.HighWatermark ||
				gp.LastStableOffset != wp.LastStableOffset ||
				(r.Version >= 5 && gp.LogStartOffset != wp.LogStartOffset) ||
				(r.Version >= 11 && gp.PreferredReadReplica != wp.PreferredReadReplica) ||
				gp.AbortedTransactions != nil ||
				(gp.RecordBatches == nil) != (wp.RecordBatches == nil) || !bytes.Equal(gp.RecordBatches, wp.RecordBatches) {
				t.Fatalf("topic %d partition %d: got %+v, want %+v", i, j, gp, wp)
			}
			if r.Version >= 12 && (gp.DivergingEpoch.Epoch != wp.DivergingEpoch.Epoch || gp.DivergingEpoch.EndOffset != wp.DivergingEpoch.EndOffset ||
				gp.CurrentLeader.LeaderID != wp.CurrentLeader.LeaderID || gp.CurrentLeader.LeaderEpoch != wp.CurrentLeader.LeaderEpoch) {
				t.Fatalf("topic %d partition %d tags: got %+v %+v, want %+v %+v", i, j, gp.DivergingEpoch, gp.CurrentLeader, wp.DivergingEpoch, wp.CurrentLeader)
			}
		}
	}
	if len(k.Brokers) != len(want.Brokers) {
		t.Fatalf("decoded %d node endpoints, want %d", len(k.Brokers), len(want.Brokers))
	}
	for i := range k.Brokers {
		g, w := k.Brokers[i], want.Brokers[i]
		if g.NodeID != w.NodeID || g.Host != w.Host || g.Port != w.Port || (g.Rack == nil) != (w.Rack == nil) || g.Rack != nil && *g.Rack != *w.Rack {
			t.Fatalf("node endpoint %d: got %+v, want %+v", i, g, w)
		}
	}
}

// Node endpoints exist only from v16: earlier flexible versions must not send
// the tag even when the caller fills the field.
func TestFetchNodeEndpointsOnlyV16(t *testing.T) {
	for v := int16(12); v <= 15; v++ {
		r := FetchResponse{Version: v, NodeEndpoints: []NodeEndpoint{{NodeID: 1, Host: "h", Port: 1}}}
		pieces, _ := r.Pieces(nil)
		got := materialize(t, pieces)
		plain := FetchResponse{Version: v}
		pp, _ := plain.Pieces(nil)
		if want := materialize(t, pp); !bytes.Equal(got, want) {
			t.Fatalf("v%d: node endpoints leaked into the frame: %x vs %x", v, got, want)
		}
	}
}

func TestFetchAppendPiecesReusesScratch(t *testing.T) {
	f := newTestFiles(t)
	r := FetchResponse{Version: 16, Topics: []FetchTopic{{Partitions: []FetchPartition{NewFetchPartition(0)}}}}
	r.Topics[0].Partitions[0].Records = []FileRange{{f.a, 0, 100}}
	scratch := make([]byte, 0, 4096)
	pieces, used, total := r.AppendPieces(nil, scratch)
	if &used[:1][0] != &scratch[:1][0] {
		t.Fatal("scratch buffer not reused")
	}
	if got := materialize(t, pieces); int64(len(got)) != total || !bytes.Equal(got, kmsgFrame(t, &r)) {
		t.Fatalf("frame with scratch differs from kmsg")
	}
	// A second encode into the returned buffer must not disturb correctness.
	pieces2, _, _ := r.AppendPieces(pieces[:0], used)
	if !bytes.Equal(materialize(t, pieces2), kmsgFrame(t, &r)) {
		t.Fatal("re-encode into recycled buffer differs")
	}
}

func TestFetchValidate(t *testing.T) {
	f := newTestFiles(t)
	bad := []struct {
		name string
		r    FetchResponse
	}{
		{"version 3", FetchResponse{Version: 3}},
		{"version 17", FetchResponse{Version: 17}},
		{"nil file", FetchResponse{Version: 12, Topics: []FetchTopic{{Partitions: []FetchPartition{{Records: []FileRange{{nil, 0, 1}}}}}}}},
		{"negative len", FetchResponse{Version: 12, Topics: []FetchTopic{{Partitions: []FetchPartition{{Records: []FileRange{{f.a, 0, -1}}}}}}}},
		{"negative pos", FetchResponse{Version: 12, Topics: []FetchTopic{{Partitions: []FetchPartition{{Records: []FileRange{{f.a, -5, 1}}}}}}}},
		{"records on null", FetchResponse{Version: 12, Topics: []FetchTopic{{Partitions: []FetchPartition{{RecordsNull: true, Records: []FileRange{{f.a, 0, 1}}}}}}}},
		{"record set over int32", FetchResponse{Version: 12, Topics: []FetchTopic{{Partitions: []FetchPartition{{Records: []FileRange{{f.a, 0, 1 << 30}, {f.a, 0, 1 << 30}}}}}}}},
		{"frame over int32", FetchResponse{Version: 12, Topics: []FetchTopic{{Partitions: []FetchPartition{
			{Records: []FileRange{{f.a, 0, 1 << 30}}}, {Records: []FileRange{{f.a, 0, 1 << 30}}}}}}}},
		{"long topic name", FetchResponse{Version: 11, Topics: []FetchTopic{{Topic: string(make([]byte, 1<<15))}}}},
	}
	for _, tc := range bad {
		if err := tc.r.Validate(); !errors.Is(err, ErrInvalidFetch) {
			t.Errorf("%s: Validate = %v, want ErrInvalidFetch", tc.name, err)
		}
	}
	// A long name is fine once topics are sent by ID.
	ok := FetchResponse{Version: 13, Topics: []FetchTopic{{Topic: string(make([]byte, 1<<15))}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("v13 long name: %v", err)
	}
}

func TestUvarintSize(t *testing.T) {
	for _, x := range []uint32{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, 1<<32 - 1} {
		if got, want := uvarintSize(x), len(binary.AppendUvarint(nil, uint64(x))); got != want {
			t.Errorf("uvarintSize(%d) = %d, want %d", x, got, want)
		}
	}
}

// benchFetchResponse is the v13 response both fetch encoding benchmarks
// encode: 4 topics by ID, 16 partitions each, every partition carrying
// offsets and one 1000-byte range of f.a.
func benchFetchResponse(f testFiles) FetchResponse {
	r := FetchResponse{Version: 13}
	for ti := range 4 {
		tp := FetchTopic{TopicID: [16]byte{byte(ti)}}
		for pi := range 16 {
			p := NewFetchPartition(int32(pi))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = 1000, 1000, 0
			p.Records = []FileRange{{f.a, int64(pi * 1000), 1000}}
			tp.Partitions = append(tp.Partitions, p)
		}
		r.Topics = append(r.Topics, tp)
	}
	return r
}

func BenchmarkFetchPieces(b *testing.B) {
	r := benchFetchResponse(newTestFiles(b))
	var pieces []Piece
	var scratch []byte
	var total int64
	b.ReportAllocs()
	for b.Loop() {
		pieces, scratch, total = r.AppendPieces(pieces[:0], scratch)
	}
	b.SetBytes(total)
}

func BenchmarkFetchKmsgAppendTo(b *testing.B) {
	r := benchFetchResponse(newTestFiles(b))
	k := toKmsg(b, &r)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResponse(buf[:0], Header{Key: KeyFetch, Version: 13}, k)
	}
	b.SetBytes(int64(len(buf)))
}

func TestNewFetchErrorResponse(t *testing.T) {
	for _, v := range []int16{4, 12, 13, 16} {
		frame := encodeRequest(sampleRequest(KeyFetch, v), 31, nil)
		req, err := ParseRequest(frame)
		if err != nil {
			t.Fatal(err)
		}
		r := NewFetchErrorResponse(req.Header, req.Msg.(*kmsg.FetchRequest), CodeNotLeaderOrFollower)
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		pieces, _ := r.Pieces(nil)
		got := materialize(t, pieces)
		if !bytes.Equal(got, kmsgFrame(t, &r)) {
			t.Fatalf("v%d: differs from kmsg", v)
		}
		dec := kmsg.NewPtrFetchResponse()
		dec.Version = v
		body := splitFrame(t, got, 31)
		if v >= 12 {
			body = body[1:]
		}
		if err := dec.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		p := dec.Topics[0].Partitions[0]
		if p.ErrorCode != CodeNotLeaderOrFollower || p.Partition != 1 || p.HighWatermark != -1 || p.RecordBatches == nil || len(p.RecordBatches) != 0 {
			t.Fatalf("v%d: partition %+v", v, p)
		}
		if v >= 13 && dec.Topics[0].TopicID != [16]byte{1, 2, 3} || v < 13 && dec.Topics[0].Topic != "orders" {
			t.Fatalf("v%d: topic %+v", v, dec.Topics[0])
		}
	}
}
