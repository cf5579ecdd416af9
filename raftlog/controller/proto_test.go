package controller

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
		{kind: kindReplicasOffline, nodeID: 3, epoch: 9, offline: []PartitionRef{{TopicID: meta.TopicID{7}, Partition: 2}, {Partition: 5}}},
		{kind: kindPropose, command: meta.EncodeCommand(meta.DeleteTopic{TopicID: topicID(1)})},
		{kind: kindPropose, command: meta.EncodeCommand(meta.AlterPartition{ProposerID: 2, ProposerEpoch: 7,
			Partitions: []meta.AlterPartitionItem{{TopicID: topicID(1), Partition: 3, LeaderEpoch: 1, PartitionEpoch: 2,
				ISR: []meta.ISRMember{{ID: 2, BrokerEpoch: 7}, {ID: 3, BrokerEpoch: meta.NoBrokerEpoch}}}}})},
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
		{kind: kindPropose, index: 97, rejected: []meta.PartitionRejection{
			{TopicID: topicID(1), Partition: 3, Err: &Error{Code: wire.CodeInvalidUpdateVersion, Message: "stale"}},
			{TopicID: topicID(2), Partition: 0, Err: &Error{Code: codeIneligibleReplica}},
		}},
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

// TestRejectedItems checks how the server's rejections travel: meta's
// errors become codes the client matches with errors.Is, messages are cut,
// and past the text budget items carry their codes alone.
func TestRejectedItems(t *testing.T) {
	long := strings.Repeat("x", 2*maxRejectionText)
	var rs []meta.PartitionRejection
	n := maxRejectionTexts/maxRejectionText + 10
	for i := range n {
		rs = append(rs, meta.PartitionRejection{TopicID: topicID(1), Partition: int32(i),
			Err: fmt.Errorf("%w: %s", meta.ErrIneligibleReplica, long)})
	}
	rs[0].Err = fmt.Errorf("item: %w", meta.ErrStaleEpoch)
	frame := encodeResponse(&response{kind: kindPropose, index: 5, rejected: rs})
	got, err := decodeResponse(frame[frameHeader:])
	if err != nil {
		t.Fatal(err)
	}
	if len(got.rejected) != n {
		t.Fatalf("decoded %d rejected items, want %d", len(got.rejected), n)
	}
	if e := got.rejected[0].Err; !errors.Is(e, meta.ErrStaleEpoch) || e.(*Error).Message != rs[0].Err.Error() {
		t.Fatalf("item 0: %v", e)
	}
	for i, r := range got.rejected[1:] {
		e := r.Err.(*Error)
		if r.Partition != int32(i+1) || !errors.Is(e, meta.ErrIneligibleReplica) || len(e.Message) > maxRejectionText {
			t.Fatalf("item %d: %d %v", i+1, r.Partition, e)
		}
	}
	if last := got.rejected[n-1].Err.(*Error); last.Message != "" {
		t.Fatalf("message past the budget: %q", last.Message)
	}
	// A forged count cannot allocate.
	w := &writer{b: make([]byte, frameHeader)}
	w.u8(ProtocolVersion)
	w.u8(uint8(kindPropose))
	w.i16(0)
	w.i32(0)
	w.str("")
	w.u64(1)
	w.bool(false)
	w.b = binary.BigEndian.AppendUint32(w.b, 1<<30)
	if _, err := decodeResponse(w.frame()[frameHeader:]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("forged rejected count: %v", err)
	}
}

func TestErrorIs(t *testing.T) {
	e := &Error{Code: wire.CodeTopicAlreadyExists, Message: "x"}
	if !errors.Is(e, meta.ErrTopicExists) || errors.Is(e, meta.ErrUnknownTopic) {
		t.Fatal("Error.Is mapping")
	}
	if codeFor(meta.ErrStaleEpoch) != wire.CodeInvalidUpdateVersion || codeFor(errors.New("x")) != wire.CodeUnknownServerError {
		t.Fatal("codeFor mapping")
	}
	for _, err := range []error{meta.ErrIneligibleReplica, meta.ErrNotPartitionLeader, meta.ErrFencedBroker, meta.ErrDuplicatePartition} {
		if c := codeFor(fmt.Errorf("x: %w", err)); c == wire.CodeUnknownServerError || !errors.Is(&Error{Code: c}, err) {
			t.Fatalf("%v maps to %d", err, c)
		}
	}
}
