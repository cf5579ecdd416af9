package controller

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

func sampleRequests() []*request {
	return []*request{
		{kind: kindRegister, register: Registration{NodeID: 4, ClusterID: "c1", Incarnation: [16]byte{1, 2, 3},
			Addresses: meta.Addresses{Client: "a:1", ClientPlain: "a:2", Internal: "a:3", Gossip: "a:4", HTTP: "a:5"}, Rack: "r1"}},
		{kind: kindHeartbeat, heartbeat: Heartbeat{NodeID: 2, BrokerEpoch: 77, WantFence: true, MetadataOffset: 1 << 40}},
		{kind: kindControlledShutdown, nodeID: 3, epoch: 9},
		{kind: kindPropose, command: meta.EncodeCommand(meta.DeleteTopic{TopicID: topicID(1)})},
		{kind: kindReplaceVoter, dead: 1, new: 5},
		{kind: kindStatus},
	}
}

func sampleResponses() []*response {
	return []*response{
		{kind: kindRegister, epoch: 12},
		{kind: kindHeartbeat, code: wire.CodeStaleBrokerEpoch, message: "stale",
			heartbeat: HeartbeatReply{ErrorCode: wire.CodeStaleBrokerEpoch, Fenced: true, ShouldShutdown: true, MetadataOffset: 1 << 40}},
		{kind: kindControlledShutdown, code: wire.CodeNotController, leader: 3, message: "not me"},
		{kind: kindPropose, index: 99, producerIDs: &meta.ProducerIDBlock{NodeID: 1, BrokerEpoch: 2, FirstID: 3000, Count: 1000}},
		{kind: kindPropose, index: 98, code: wire.CodeTopicAlreadyExists, message: "exists"},
		{kind: kindReplaceVoter},
		{kind: kindStatus, status: Status{LeaderID: 2, Term: 7, Voters: []int32{1, 2, 3}, Learners: []int32{4}, Applied: 55}},
	}
}

func TestProtoRoundTrip(t *testing.T) {
	for _, req := range sampleRequests() {
		frame := encodeRequest(req)
		body, err := readFrame(bytes.NewReader(frame), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRequest(body)
		if err != nil {
			t.Fatalf("%v: %v", req.kind, err)
		}
		if !reflect.DeepEqual(got, req) {
			t.Fatalf("%v: got %+v want %+v", req.kind, got, req)
		}
	}
	for _, resp := range sampleResponses() {
		frame := encodeResponse(resp)
		got, err := decodeResponse(frame[frameHeader:])
		if err != nil {
			t.Fatalf("%v: %v", resp.kind, err)
		}
		if !reflect.DeepEqual(got, resp) {
			t.Fatalf("%v: got %+v want %+v", resp.kind, got, resp)
		}
	}
}

// Every truncation and every single-byte corruption of a valid message
// decodes to an error or a value, never a panic.
func TestProtoTruncatedAndCorrupt(t *testing.T) {
	check := func(b []byte, decode func([]byte) error) {
		for n := range len(b) {
			if err := decode(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix %d of %x: %v, want ErrMalformed", n, b, err)
			}
		}
		for i := range b {
			c := bytes.Clone(b)
			c[i] ^= 0xFF
			_ = decode(c) // must not panic
		}
	}
	for _, r := range sampleRequests() {
		check(encodeRequest(r)[frameHeader:], func(b []byte) error { _, err := decodeRequest(b); return err })
	}
	for _, r := range sampleResponses() {
		check(encodeResponse(r)[frameHeader:], func(b []byte) error { _, err := decodeResponse(b); return err })
	}
	if _, err := decodeRequest([]byte{ProtocolVersion + 1, byte(kindStatus)}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a newer version: %v", err)
	}
	if _, err := decodeRequest([]byte{ProtocolVersion, 200}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := decodeRequest([]byte{ProtocolVersion, byte(kindStatus), 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, 1<<31)
	if _, err := readFrame(bytes.NewReader(huge), 1<<20); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("huge length: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 1, 1}), 1<<20); !errors.Is(err, ErrMalformed) {
		t.Fatalf("tiny length: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 9, 1, 2}), 1<<20); err == nil {
		t.Fatal("short body accepted")
	}
	// A false list length must not allocate: 65536 voters claimed in a few bytes.
	w := &writer{b: make([]byte, frameHeader)}
	w.u8(ProtocolVersion)
	w.u8(uint8(kindStatus))
	w.i16(0)
	w.i32(0)
	w.str("")
	w.i32(1)
	w.u64(1)
	w.b = binary.BigEndian.AppendUint32(w.b, 1<<16)
	if _, err := decodeResponse(w.frame()[frameHeader:]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("false list length: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, r := range sampleRequests() {
		f.Add(encodeRequest(r)[frameHeader:])
	}
	for _, r := range sampleResponses() {
		f.Add(encodeResponse(r)[frameHeader:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeRequest(b); err == nil {
			if !bytes.Equal(encodeRequest(req)[frameHeader:], b) {
				t.Fatalf("request %x does not re-encode identically", b)
			}
		}
		_, _ = decodeResponse(b)
	})
}

func TestErrorIs(t *testing.T) {
	e := &Error{Code: wire.CodeTopicAlreadyExists, Message: "x"}
	if !errors.Is(e, meta.ErrTopicExists) || errors.Is(e, meta.ErrUnknownTopic) {
		t.Fatal("Error.Is mapping")
	}
	if codeFor(meta.ErrStaleEpoch) != wire.CodeInvalidUpdateVersion || codeFor(errors.New("x")) != wire.CodeUnknownServerError {
		t.Fatal("codeFor mapping")
	}
}
