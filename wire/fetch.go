package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FileRange is a run of whole record batches inside a segment file.
type FileRange struct {
	File     *os.File
	Pos, Len int64
}

// Piece is one part of an outgoing frame: either in-memory bytes (File ==
// nil) or Len bytes of File starting at Pos, to be sent with sendfile (or
// pread+write). The Bytes of pieces returned by Pieces share one backing
// array; they are read-only.
type Piece struct {
	Bytes    []byte
	File     *os.File
	Pos, Len int64
}

// Size is the number of bytes the piece contributes to the frame.
func (p Piece) Size() int64 {
	if p.File == nil {
		return int64(len(p.Bytes))
	}
	return p.Len
}

// EpochEndOffset is Fetch's DivergingEpoch: the largest epoch not above the
// follower's LastFetchedEpoch and where it ends on the leader.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// LeaderIDAndEpoch is Fetch's CurrentLeader hint.
type LeaderIDAndEpoch struct {
	LeaderID, LeaderEpoch int32
}

// NodeEndpoint is one entry of Fetch v16's NodeEndpoints (brokers named by
// CurrentLeader hints).
type NodeEndpoint struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
}

// FetchPartition is one partition of a Fetch response.
//
// The zero value is NOT a neutral partition: PreferredReadReplica 0 names
// broker 0 as the replica to read from. Start from NewFetchPartition.
type FetchPartition struct {
	Partition            int32
	ErrorCode            int16
	HighWatermark        int64
	LastStableOffset     int64 // v4+
	LogStartOffset       int64 // v5+
	PreferredReadReplica int32 // v11+; -1 for "keep reading from the leader"
	// DivergingEpoch (v12+ tag 0) is sent exactly when non-nil.
	DivergingEpoch *EpochEndOffset
	// CurrentLeader (v12+ tag 1) is sent exactly when non-nil.
	CurrentLeader *LeaderIDAndEpoch
	// Records are sent back to back as the partition's record set. Their
	// lengths must stay fixed until the frame is written: the frame size was
	// computed from them.
	Records []FileRange
	// RecordsNull sends a null record set instead of an empty one (Records
	// must then be empty). Kafka sends empty, not null, for error partitions.
	RecordsNull bool
}

// NewFetchPartition returns a partition with Kafka's defaults: unknown
// offsets (-1), no preferred read replica (-1), no tags, empty records.
func NewFetchPartition(partition int32) FetchPartition {
	return FetchPartition{
		Partition:            partition,
		HighWatermark:        -1,
		LastStableOffset:     -1,
		LogStartOffset:       -1,
		PreferredReadReplica: -1,
	}
}

// FetchTopic is one topic of a Fetch response. Topic is sent up to v12,
// TopicID from v13.
type FetchTopic struct {
	Topic      string
	TopicID    [16]byte
	Partitions []FetchPartition
}

// FetchResponse is a Fetch response of version FetchMinVersion..FetchMaxVersion,
// encoded by hand so that record data can go out by sendfile. See doc.go for
// the byte layout.
//
// Aborted transactions are always sent as a null array (Sluice has no
// transactions; kmsg and Kafka's READ_UNCOMMITTED path do the same) and
// SnapshotId is never sent.
type FetchResponse struct {
	Version        int16
	CorrelationID  int32
	ThrottleMillis int32
	ErrorCode      int16 // v7+
	SessionID      int32 // v7+
	Topics         []FetchTopic
	NodeEndpoints  []NodeEndpoint // v16+ tag 0, sent when non-empty
}

// ErrInvalidFetch reports a FetchResponse that cannot be encoded.
var ErrInvalidFetch = errors.New("wire: invalid fetch response")

// Validate reports whether r can be encoded: a version in range, non-negative
// range lengths with a file behind every non-empty range, no records on a
// null record set, and every length within the protocol's int32/int16 limits.
func (r *FetchResponse) Validate() error {
	if r.Version < FetchMinVersion || r.Version > FetchMaxVersion {
		return fmt.Errorf("%w: version %d outside %d–%d", ErrInvalidFetch, r.Version, FetchMinVersion, FetchMaxVersion)
	}
	for ti := range r.Topics {
		t := &r.Topics[ti]
		if r.Version <= 12 && len(t.Topic) > math.MaxInt16 {
			return fmt.Errorf("%w: topic name of %d bytes", ErrInvalidFetch, len(t.Topic))
		}
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			var n int64
			for _, fr := range p.Records {
				if fr.Len < 0 || fr.Pos < 0 || (fr.Len > 0 && fr.File == nil) {
					return fmt.Errorf("%w: topic %q partition %d: bad file range %+v", ErrInvalidFetch, t.Topic, p.Partition, fr)
				}
				n += fr.Len
			}
			if p.RecordsNull && n > 0 {
				return fmt.Errorf("%w: topic %q partition %d: records on a null record set", ErrInvalidFetch, t.Topic, p.Partition)
			}
			if n > math.MaxInt32-1 {
				return fmt.Errorf("%w: topic %q partition %d: %d record bytes", ErrInvalidFetch, t.Topic, p.Partition, n)
			}
		}
	}
	for _, e := range r.NodeEndpoints {
		if len(e.Host) > math.MaxInt32-1 || (e.Rack != nil && len(*e.Rack) > math.MaxInt32-1) {
			return fmt.Errorf("%w: node endpoint %d too long", ErrInvalidFetch, e.NodeID)
		}
	}
	if hdr, rec := r.size(); int64(hdr)+rec-4 > math.MaxInt32 {
		return fmt.Errorf("%w: frame of %d bytes", ErrInvalidFetch, int64(hdr)+rec)
	}
	return nil
}

// Pieces appends the whole response frame, 4-byte size prefix included, to
// dst and returns it with the frame's total length. See AppendPieces.
func (r *FetchResponse) Pieces(dst []Piece) ([]Piece, int64) {
	dst, _, total := r.AppendPieces(dst, nil)
	return dst, total
}

// AppendPieces is Pieces with a caller-supplied scratch buffer for the
// non-record bytes; it is used when cap(scratch) is large enough, and the
// buffer actually used is returned for recycling once the frame is sent.
//
// Every run of bytes between two record sets becomes one Bytes piece, and
// contiguous ranges of the same file are merged, so a frame has at most one
// Bytes piece more than it has record sets. r must pass Validate; an invalid
// r yields an unspecified (but bounded) encoding.
func (r *FetchResponse) AppendPieces(dst []Piece, scratch []byte) ([]Piece, []byte, int64) {
	hdrBytes, recBytes := r.size()
	total := int64(hdrBytes) + recBytes
	buf := scratch[:0]
	if cap(buf) < hdrBytes {
		buf = make([]byte, 0, hdrBytes)
	}
	e := fetchEncoder{buf: buf, dst: dst}
	r.write(&e, int32(total-4))
	e.cut()
	if len(e.buf) != hdrBytes {
		// The size pass and the write pass disagree: a bug in this file,
		// and the frame would desynchronise the client.
		panic(fmt.Sprintf("wire: fetch v%d: wrote %d header bytes, sized %d", r.Version, len(e.buf), hdrBytes))
	}
	return e.dst, e.buf, total
}

// flexibleFetch reports whether Fetch version v uses KIP-482 compact encodings.
func flexibleFetch(v int16) bool { return v >= 12 }

// size is the size pass: the bytes this package writes itself (size prefix
// included) and the record bytes that come from files.
func (r *FetchResponse) size() (hdr int, rec int64) {
	v := r.Version
	flex := flexibleFetch(v)
	hdr = 4 + 4 // size, correlation id
	if flex {
		hdr++ // response header tags
	}
	hdr += 4 // throttle
	if v >= 7 {
		hdr += 2 + 4 // error code, session id
	}
	hdr += arrayLenSize(len(r.Topics), flex)
	for ti := range r.Topics {
		t := &r.Topics[ti]
		switch {
		case v >= 13:
			hdr += 16
		case flex:
			hdr += uvarintSize(uint32(len(t.Topic))+1) + len(t.Topic)
		default:
			hdr += 2 + len(t.Topic)
		}
		hdr += arrayLenSize(len(t.Partitions), flex)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			hdr += 4 + 2 + 8 + 8 // partition, error, high watermark, last stable offset
			if v >= 5 {
				hdr += 8 // log start offset
			}
			if flex {
				hdr++ // null aborted transactions: uvarint 0
			} else {
				hdr += 4 // null aborted transactions: int32 -1
			}
			if v >= 11 {
				hdr += 4 // preferred read replica
			}
			n := recordsLen(p)
			rec += n
			switch {
			case !flex:
				hdr += 4
			case p.RecordsNull:
				hdr++
			default:
				hdr += uvarintSize(uint32(n) + 1)
			}
			if flex {
				hdr += partitionTagsSize(p)
			}
		}
		if flex {
			hdr++ // topic tags
		}
	}
	if flex {
		hdr++ // top-level tag count
		if n := r.endpointsSize(); n > 0 {
			hdr += 1 + uvarintSize(uint32(n)) + n
		}
	}
	return hdr, rec
}

// recordsLen is the length of p's record set (0 when null).
func recordsLen(p *FetchPartition) int64 {
	var n int64
	for _, fr := range p.Records {
		n += fr.Len
	}
	return n
}

// Tagged field bodies: the struct fields plus their own empty tag section.
const (
	divergingEpochBodySize = 4 + 8 + 1
	currentLeaderBodySize  = 4 + 4 + 1
)

func partitionTagsSize(p *FetchPartition) int {
	n := 1 // tag count (at most 2, one byte)
	if p.DivergingEpoch != nil {
		n += 1 + 1 + divergingEpochBodySize // key, size, body
	}
	if p.CurrentLeader != nil {
		n += 1 + 1 + currentLeaderBodySize
	}
	return n
}

// endpointsSize is the body size of the NodeEndpoints tag, or 0 when the tag
// is not sent.
func (r *FetchResponse) endpointsSize() int {
	if r.Version < 16 || len(r.NodeEndpoints) == 0 {
		return 0
	}
	n := uvarintSize(uint32(len(r.NodeEndpoints)) + 1)
	for _, e := range r.NodeEndpoints {
		n += 4 + uvarintSize(uint32(len(e.Host))+1) + len(e.Host) + 4
		if e.Rack == nil {
			n++
		} else {
			n += uvarintSize(uint32(len(*e.Rack))+1) + len(*e.Rack)
		}
		n++ // entry tags
	}
	return n
}

// write is the write pass; it must emit exactly the bytes size counted.
func (r *FetchResponse) write(e *fetchEncoder, frameSize int32) {
	v := r.Version
	flex := flexibleFetch(v)
	e.i32(frameSize)
	e.i32(r.CorrelationID)
	if flex {
		e.byte(0)
	}
	e.i32(r.ThrottleMillis)
	if v >= 7 {
		e.i16(r.ErrorCode)
		e.i32(r.SessionID)
	}
	e.arrayLen(len(r.Topics), flex)
	for ti := range r.Topics {
		t := &r.Topics[ti]
		switch {
		case v >= 13:
			e.buf = append(e.buf, t.TopicID[:]...)
		case flex:
			e.uvarint(uint32(len(t.Topic)) + 1)
			e.buf = append(e.buf, t.Topic...)
		default:
			e.i16(int16(len(t.Topic)))
			e.buf = append(e.buf, t.Topic...)
		}
		e.arrayLen(len(t.Partitions), flex)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			e.i32(p.Partition)
			e.i16(p.ErrorCode)
			e.i64(p.HighWatermark)
			e.i64(p.LastStableOffset)
			if v >= 5 {
				e.i64(p.LogStartOffset)
			}
			if flex {
				e.byte(0)
			} else {
				e.i32(-1)
			}
			if v >= 11 {
				e.i32(p.PreferredReadReplica)
			}
			n := recordsLen(p)
			switch {
			case p.RecordsNull && flex:
				e.byte(0)
			case p.RecordsNull:
				e.i32(-1)
			case flex:
				e.uvarint(uint32(n) + 1)
			default:
				e.i32(int32(n))
			}
			if !p.RecordsNull {
				e.records(p.Records)
			}
			if flex {
				r.writePartitionTags(e, p)
			}
		}
		if flex {
			e.byte(0)
		}
	}
	if flex {
		n := r.endpointsSize()
		if n == 0 {
			e.byte(0)
			return
		}
		e.byte(1) // one tag
		e.byte(0) // key 0: NodeEndpoints
		e.uvarint(uint32(n))
		e.uvarint(uint32(len(r.NodeEndpoints)) + 1)
		for _, ne := range r.NodeEndpoints {
			e.i32(ne.NodeID)
			e.uvarint(uint32(len(ne.Host)) + 1)
			e.buf = append(e.buf, ne.Host...)
			e.i32(ne.Port)
			if ne.Rack == nil {
				e.byte(0)
			} else {
				e.uvarint(uint32(len(*ne.Rack)) + 1)
				e.buf = append(e.buf, *ne.Rack...)
			}
			e.byte(0)
		}
	}
}

func (r *FetchResponse) writePartitionTags(e *fetchEncoder, p *FetchPartition) {
	var count byte
	if p.DivergingEpoch != nil {
		count++
	}
	if p.CurrentLeader != nil {
		count++
	}
	e.byte(count)
	if d := p.DivergingEpoch; d != nil {
		e.byte(0)
		e.byte(divergingEpochBodySize)
		e.i32(d.Epoch)
		e.i64(d.EndOffset)
		e.byte(0)
	}
	if l := p.CurrentLeader; l != nil {
		e.byte(1)
		e.byte(currentLeaderBodySize)
		e.i32(l.LeaderID)
		e.i32(l.LeaderEpoch)
		e.byte(0)
	}
}

// fetchEncoder appends into buf, whose capacity was sized exactly by the
// size pass, so earlier Bytes pieces never see a reallocation.
type fetchEncoder struct {
	buf  []byte
	mark int // start of the bytes not yet emitted as a piece
	dst  []Piece
}

func (e *fetchEncoder) byte(b byte) { e.buf = append(e.buf, b) }
func (e *fetchEncoder) i16(v int16) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(v)) }
func (e *fetchEncoder) i32(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }
func (e *fetchEncoder) i64(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }
func (e *fetchEncoder) uvarint(v uint32) {
	e.buf = binary.AppendUvarint(e.buf, uint64(v))
}

func (e *fetchEncoder) arrayLen(n int, flex bool) {
	if flex {
		e.uvarint(uint32(n) + 1)
	} else {
		e.i32(int32(n))
	}
}

// cut emits the pending bytes as a piece.
func (e *fetchEncoder) cut() {
	if len(e.buf) > e.mark {
		e.dst = append(e.dst, Piece{Bytes: e.buf[e.mark:len(e.buf):len(e.buf)]})
		e.mark = len(e.buf)
	}
}

// records emits file-range pieces, merging contiguous ranges of one file.
func (e *fetchEncoder) records(ranges []FileRange) {
	for _, fr := range ranges {
		if fr.Len == 0 {
			continue
		}
		e.cut()
		if n := len(e.dst); n > 0 {
			last := &e.dst[n-1]
			if last.File != nil && last.File == fr.File && last.Pos+last.Len == fr.Pos {
				last.Len += fr.Len
				continue
			}
		}
		e.dst = append(e.dst, Piece{File: fr.File, Pos: fr.Pos, Len: fr.Len})
	}
}

func arrayLenSize(n int, flex bool) int {
	if flex {
		return uvarintSize(uint32(n) + 1)
	}
	return 4
}

// uvarintSize is the width of x as an unsigned varint: 7 bits per byte.
func uvarintSize(x uint32) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// NewFetchErrorResponse answers every partition of req with code and no
// records (HighWatermark, LastStableOffset and LogStartOffset -1, empty record
// sets), keeping the request's topic names, IDs and order. For a top-level
// failure such as CodeFetchSessionIDNotFound use a FetchResponse with
// ErrorCode set and no topics instead.
func NewFetchErrorResponse(h Header, req *kmsg.FetchRequest, code int16) FetchResponse {
	r := FetchResponse{Version: h.Version, CorrelationID: h.CorrelationID}
	r.Topics = make([]FetchTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		t := FetchTopic{Topic: rt.Topic, TopicID: rt.TopicID, Partitions: make([]FetchPartition, 0, len(rt.Partitions))}
		for _, rp := range rt.Partitions {
			p := NewFetchPartition(rp.Partition)
			p.ErrorCode = code
			t.Partitions = append(t.Partitions, p)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}
