package controller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// Wire format of the controller RPC (see doc.go):
//
//	frame    = length u32 | body                 (length = len(body), 2..MaxMessageSize)
//	request  = version u8 (=3) | kind u8 | fields
//	response = version u8 (=3) | kind u8 | error code i16 | controller i32 | message str | fields

// ProtocolVersion is the RPC message version. 3 added the rejected items
// to the Propose response; 4 added ReplicasOffline.
const ProtocolVersion = 4

const (
	frameHeader    = 4
	minMessageSize = 1 << 10
	maxMessageText = 4 << 10 // error messages are cut to this
	maxListLen     = 1 << 16 // voters, learners
	// maxRejectionText cuts one rejected item's message, and
	// maxRejectionTexts bounds all of them, like an error message: past it,
	// items are answered with their codes alone, and an item's answer
	// without text (26 bytes) is smaller than the item (32 at least).
	maxRejectionText  = 256
	maxRejectionTexts = maxMessageText
	rejectionBytes    = 16 + 4 + 2 + 4 // topic id, partition, code, empty message
)

// ErrMalformed reports an RPC message that does not decode.
var ErrMalformed = errors.New("controller: malformed message")

// ErrMessageTooLarge reports an RPC frame above MaxMessageSize.
var ErrMessageTooLarge = errors.New("controller: message too large")

type kind uint8

const (
	kindRegister           kind = 1
	kindHeartbeat          kind = 2
	kindControlledShutdown kind = 3
	kindPropose            kind = 4
	kindReplaceVoter       kind = 5
	kindStatus             kind = 6
	kindReplicasOffline    kind = 7
)

func (k kind) String() string {
	switch k {
	case kindRegister:
		return "Register"
	case kindHeartbeat:
		return "Heartbeat"
	case kindControlledShutdown:
		return "ControlledShutdown"
	case kindPropose:
		return "Propose"
	case kindReplaceVoter:
		return "ReplaceVoter"
	case kindStatus:
		return "Status"
	case kindReplicasOffline:
		return "ReplicasOffline"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Registration is what a broker sends to register (or re-register after a
// restart): the meta.RegisterBroker the controller proposes, carried in the
// command's own encoding.
type Registration = meta.RegisterBroker

// Status is the controller's view of the metadata quorum.
type Status struct {
	LeaderID int32
	Term     uint64
	Voters   []int32
	Learners []int32
	Applied  uint64
}

// request is one decoded request; only the fields of its kind are set.
type request struct {
	kind      kind
	register  Registration
	heartbeat Heartbeat
	nodeID    int32 // ControlledShutdown
	epoch     int64 // ControlledShutdown
	command   []byte
	dead, new int32          // ReplaceVoter
	offline   []PartitionRef // ReplicasOffline (with nodeID, epoch)
}

// PartitionRef names a partition in a ReplicasOffline report.
type PartitionRef struct {
	TopicID   meta.TopicID
	Partition int32
}

// response is one decoded response.
type response struct {
	kind      kind
	code      int16
	leader    int32 // known controller, with NOT_CONTROLLER
	message   string
	epoch     int64          // Register
	heartbeat HeartbeatReply // Heartbeat (ErrorCode mirrors code)
	index     uint64         // Propose (also set with a rejection)
	// producerIDs is the block handed out by a forwarded AllocateProducerIDs.
	producerIDs *meta.ProducerIDBlock
	// rejected lists the items of a forwarded AlterPartition that were not
	// applied; decoded, each Err is an *Error.
	rejected []meta.PartitionRejection
	status   Status
}

func encodeRequest(r *request) []byte {
	w := &writer{b: make([]byte, frameHeader, 64)}
	w.u8(ProtocolVersion)
	w.u8(uint8(r.kind))
	switch r.kind {
	case kindRegister:
		w.bytes(meta.EncodeCommand(r.register))
	case kindHeartbeat:
		h := r.heartbeat
		w.i32(h.NodeID)
		w.i64(h.BrokerEpoch)
		w.bool(h.WantFence)
		w.u64(h.MetadataOffset)
	case kindControlledShutdown:
		w.i32(r.nodeID)
		w.i64(r.epoch)
	case kindPropose:
		w.bytes(r.command)
	case kindReplaceVoter:
		w.i32(r.dead)
		w.i32(r.new)
	case kindReplicasOffline:
		w.i32(r.nodeID)
		w.i64(r.epoch)
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(r.offline)))
		for _, p := range r.offline {
			w.b = append(w.b, p.TopicID[:]...)
			w.i32(p.Partition)
		}
	case kindStatus:
	}
	return w.frame()
}

func decodeRequest(b []byte) (*request, error) {
	rd := &reader{b: b}
	ver, k := rd.u8(), kind(rd.u8())
	if rd.err != nil {
		return nil, rd.err
	}
	if ver != ProtocolVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, ver)
	}
	r := &request{kind: k}
	switch k {
	case kindRegister:
		b := rd.bytes()
		if rd.err == nil {
			cmd, err := meta.DecodeCommand(b)
			rb, ok := cmd.(meta.RegisterBroker)
			if err != nil || !ok {
				return nil, fmt.Errorf("%w: register: %w", ErrMalformed, errors.Join(err, errors.New("not a RegisterBroker")))
			}
			r.register = rb
		}
	case kindHeartbeat:
		r.heartbeat = Heartbeat{NodeID: rd.i32(), BrokerEpoch: rd.i64(), WantFence: rd.bool(), MetadataOffset: rd.u64()}
	case kindControlledShutdown:
		r.nodeID, r.epoch = rd.i32(), rd.i64()
	case kindPropose:
		r.command = rd.bytes()
	case kindReplaceVoter:
		r.dead, r.new = rd.i32(), rd.i32()
	case kindReplicasOffline:
		r.nodeID, r.epoch = rd.i32(), rd.i64()
		n := rd.length()
		if n > len(rd.b)/(16+4) {
			return nil, fmt.Errorf("%w: %d offline replicas", ErrMalformed, n)
		}
		for range n {
			var p PartitionRef
			copy(p.TopicID[:], rd.take(16))
			p.Partition = rd.i32()
			r.offline = append(r.offline, p)
		}
	case kindStatus:
	default:
		return nil, fmt.Errorf("%w: unknown request %v", ErrMalformed, k)
	}
	if err := rd.end(); err != nil {
		return nil, fmt.Errorf("%v request: %w", k, err)
	}
	return r, nil
}

func encodeResponse(r *response) []byte {
	w := &writer{b: make([]byte, frameHeader, 64)}
	w.u8(ProtocolVersion)
	w.u8(uint8(r.kind))
	w.i16(r.code)
	w.i32(r.leader)
	msg := r.message
	if len(msg) > maxMessageText {
		msg = msg[:maxMessageText]
	}
	w.str(msg)
	switch r.kind {
	case kindRegister:
		w.i64(r.epoch)
	case kindHeartbeat:
		w.bool(r.heartbeat.Fenced)
		w.bool(r.heartbeat.ShouldShutdown)
		w.u64(r.heartbeat.MetadataOffset)
		w.i64(int64(r.heartbeat.Lease))
	case kindPropose:
		w.u64(r.index)
		w.bool(r.producerIDs != nil)
		if b := r.producerIDs; b != nil {
			w.i32(b.NodeID)
			w.i64(b.BrokerEpoch)
			w.i64(b.FirstID)
			w.i64(b.Count)
		}
		writeRejected(w, r.rejected)
	case kindStatus:
		s := r.status
		w.i32(s.LeaderID)
		w.u64(s.Term)
		w.i32s(s.Voters)
		w.i32s(s.Learners)
		w.u64(s.Applied)
	}
	return w.frame()
}

func decodeResponse(b []byte) (*response, error) {
	rd := &reader{b: b}
	ver, k := rd.u8(), kind(rd.u8())
	r := &response{kind: k, code: rd.i16(), leader: rd.i32(), message: rd.str()}
	if rd.err != nil {
		return nil, rd.err
	}
	if ver != ProtocolVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, ver)
	}
	switch k {
	case kindRegister:
		r.epoch = rd.i64()
	case kindHeartbeat:
		r.heartbeat = HeartbeatReply{ErrorCode: r.code, Fenced: rd.bool(), ShouldShutdown: rd.bool(), MetadataOffset: rd.u64(),
			Lease: time.Duration(rd.i64())}
	case kindPropose:
		r.index = rd.u64()
		if rd.bool() {
			r.producerIDs = &meta.ProducerIDBlock{NodeID: rd.i32(), BrokerEpoch: rd.i64(), FirstID: rd.i64(), Count: rd.i64()}
		}
		r.rejected = readRejected(rd)
	case kindStatus:
		r.status = Status{LeaderID: rd.i32(), Term: rd.u64(), Voters: rd.i32s(), Learners: rd.i32s(), Applied: rd.u64()}
	case kindControlledShutdown, kindReplaceVoter, kindReplicasOffline:
	default:
		return nil, fmt.Errorf("%w: unknown response %v", ErrMalformed, k)
	}
	if err := rd.end(); err != nil {
		return nil, fmt.Errorf("%v response: %w", k, err)
	}
	return r, nil
}

// writeRejected writes rejected items as u32 count × (topic id [16] |
// partition i32 | code i16 | message str), messages cut as described at
// maxRejectionText.
func writeRejected(w *writer, rs []meta.PartitionRejection) {
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(rs)))
	budget := maxRejectionTexts
	for _, r := range rs {
		w.b = append(w.b, r.TopicID[:]...)
		w.i32(r.Partition)
		w.i16(codeFor(r.Err))
		msg := ""
		if r.Err != nil && budget > 0 {
			msg = r.Err.Error()
			if e, ok := r.Err.(*Error); ok {
				msg = e.Message // as decoded: re-encodes to the same bytes
			}
			msg = msg[:min(len(msg), maxRejectionText, budget)]
			budget -= len(msg)
		}
		w.str(msg)
	}
}

func readRejected(rd *reader) []meta.PartitionRejection {
	n := rd.length()
	if rd.err != nil {
		return nil
	}
	if n > len(rd.b)/rejectionBytes {
		rd.err = fmt.Errorf("%w: %d rejected items", ErrMalformed, n)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]meta.PartitionRejection, n)
	for i := range out {
		var id meta.TopicID
		copy(id[:], rd.take(len(id)))
		out[i] = meta.PartitionRejection{TopicID: id, Partition: rd.i32()}
		out[i].Err = &Error{Code: rd.i16(), Message: rd.str()}
	}
	return out
}

// readFrame reads one frame and returns its body. The length is checked
// against max before anything is allocated.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 2 {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, n)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the size promised a body
		}
		return nil, fmt.Errorf("controller: read frame: %w", err)
	}
	return b, nil
}

type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) i16(v int16)  { w.b = binary.BigEndian.AppendUint16(w.b, uint16(v)) }
func (w *writer) i32(v int32)  { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *writer) i64(v int64)  { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

func (w *writer) bool(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

func (w *writer) bytes(v []byte) {
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(v)))
	w.b = append(w.b, v...)
}

func (w *writer) str(v string) { w.bytes([]byte(v)) }

func (w *writer) i32s(v []int32) {
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(v)))
	for _, x := range v {
		w.i32(x)
	}
}

// frame fills in the length prefix reserved at the start.
func (w *writer) frame() []byte {
	binary.BigEndian.PutUint32(w.b, uint32(len(w.b)-frameHeader))
	return w.b
}

// reader decodes big-endian fields; the first error sticks and later reads
// return zero values. Lengths are checked against the bytes left, so a
// false length never allocates.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: need %d bytes, have %d", ErrMalformed, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) i16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) i32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) i64() int64 { return int64(r.u64()) }

func (r *reader) bool() bool {
	v := r.u8()
	if v > 1 && r.err == nil {
		r.err = fmt.Errorf("%w: boolean %d", ErrMalformed, v)
	}
	return v == 1
}

func (r *reader) length() int {
	if b := r.take(4); b != nil {
		n := binary.BigEndian.Uint32(b)
		if n > math.MaxInt32 {
			r.err = fmt.Errorf("%w: length %d", ErrMalformed, n)
			return 0
		}
		return int(n)
	}
	return 0
}

func (r *reader) bytes() []byte {
	n := r.length()
	b := r.take(n)
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (r *reader) str() string {
	return string(r.take(r.length()))
}

func (r *reader) i32s() []int32 {
	n := r.length()
	if r.err != nil {
		return nil
	}
	if n > maxListLen || n*4 > len(r.b) {
		r.err = fmt.Errorf("%w: list of %d", ErrMalformed, n)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = r.i32()
	}
	return out
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	return r.err
}
