package raftlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-io/sluice/internal/link"
)

func TestMessageFrameRoundTrip(t *testing.T) {
	msgs := []*raftpb.Message{
		{Type: raftpb.MsgHeartbeat.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(7)), Commit: new(uint64(42))},
		{Type: raftpb.MsgApp.Enum(), To: new(uint64(3)), From: new(uint64(1)), Entries: []*raftpb.Entry{
			{Index: new(uint64(5)), Term: new(uint64(7)), Data: bytes.Repeat([]byte("x"), 3<<20)}, // beyond frameChunk
		}},
	}
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = AppendMessageFrame(buf, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(buf)
	for i, want := range msgs {
		got, err := ReadMessageFrame(r, 8<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.GetType() != want.GetType() || got.GetTo() != want.GetTo() || got.GetCommit() != want.GetCommit() ||
			len(got.GetEntries()) != len(want.GetEntries()) {
			t.Fatalf("frame %d: got %v", i, got.GetType())
		}
		if len(want.GetEntries()) > 0 && !bytes.Equal(got.GetEntries()[0].GetData(), want.GetEntries()[0].GetData()) {
			t.Fatalf("frame %d: entry data differs", i)
		}
	}
	if _, err := ReadMessageFrame(r, 8<<20); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

func TestMessageFrameBadInput(t *testing.T) {
	hdr := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"zero length", hdr(0), ErrFrameTooLarge},
		{"over max (no body sent)", hdr(1 << 31), ErrFrameTooLarge},
		{"just over max", append(hdr(1025), make([]byte, 1025)...), ErrFrameTooLarge},
		{"truncated body", append(hdr(100), 1, 2, 3), io.ErrUnexpectedEOF},
		{"truncated large body", append(hdr(2<<20), make([]byte, 10)...), io.ErrUnexpectedEOF},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"not protobuf", append(hdr(4), 0xff, 0xff, 0xff, 0xff), ErrBadFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			maxSize := 1024
			if c.name == "truncated large body" {
				maxSize = 4 << 20 // beyond frameChunk: the growing-buffer path
			}
			_, err := ReadMessageFrame(bytes.NewReader(c.in), maxSize)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

// A peer without the cluster secret is refused by the link and logged; an
// authenticated peer cannot speak for another node or send oversized
// frames. None of it reaches raft.
func TestTransportRefusesUnauthenticatedAndForged(t *testing.T) {
	h := newHarness(t, []uint64{1}, nil)
	m := h.start(1)
	h.waitLeader(5 * time.Second)
	term := m.node.Term()
	addr, _ := h.resolve(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Wrong secret: the handshake fails on both sides.
	if conn, _, err := link.Dial(ctx, addr, testSecret(), 2, link.PurposeRaft); err == nil {
		_ = conn.Close()
		t.Fatal("dial with a wrong secret succeeded")
	} else if !errors.Is(err, link.ErrAuth) {
		t.Fatalf("dial with a wrong secret: %v, want link.ErrAuth", err)
	}
	select {
	case r := <-h.refusals:
		if r.Reason != link.ReasonAuth {
			t.Fatalf("refusal reason %v, want auth", r.Reason)
		}
	case <-ctx.Done():
		t.Fatal("listener did not report the refused peer")
	}
	if !strings.Contains(h.logs.String(), "refused internal connection") || !strings.Contains(h.logs.String(), "reason=auth") {
		t.Fatal("refused peer not logged")
	}

	// Authenticated as node 7 but claiming to be node 2, with a term that
	// would depose the leader.
	send := func(frame []byte) {
		t.Helper()
		conn, peer, err := link.Dial(ctx, addr, h.secret, 7, link.PurposeRaft)
		if err != nil || peer != 1 {
			t.Fatalf("dial: peer %d err %v", peer, err)
		}
		defer conn.Close()
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		// The node closes the connection.
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection not closed by the node: %v", err)
		}
	}
	before := m.node.Transport().Stats().Rejected
	forged, err := AppendMessageFrame(nil, &raftpb.Message{Type: raftpb.MsgVote.Enum(), From: new(uint64(2)), To: new(uint64(1)),
		Term: new(term + 100), LogTerm: new(uint64(1000)), Index: new(uint64(1000))})
	if err != nil {
		t.Fatal(err)
	}
	send(forged)
	send(binary.BigEndian.AppendUint32(nil, 1<<31)) // 2 GiB frame header
	if got := m.node.Transport().Stats().Rejected - before; got != 2 {
		t.Fatalf("rejected %d connections, want 2", got)
	}
	if m.node.Term() != term || !m.node.IsLeader() {
		t.Fatalf("term %d (was %d), leader %v: injected message reached raft", m.node.Term(), term, m.node.IsLeader())
	}
	idx, _ := h.propose(regCmd(1))
	if idx == 0 {
		t.Fatal("no index")
	}
}

func TestTransportConfigValidate(t *testing.T) {
	c := DefaultTransportConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("empty secret accepted")
	}
	c.Secret = testSecret()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := c
	bad.QueueSize = 0
	if bad.Validate() == nil {
		t.Fatal("zero queue accepted")
	}
	bad = c
	bad.BackoffMax = bad.BackoffMin / 2
	if bad.Validate() == nil {
		t.Fatal("BackoffMax < BackoffMin accepted")
	}
}

// FuzzReadMessageFrame: any input either fails with an error or decodes
// to a message that encodes again; never a panic or an oversized read.
func FuzzReadMessageFrame(f *testing.F) {
	hb, _ := AppendMessageFrame(nil, &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: new(uint64(2)), From: new(uint64(1))})
	f.Add(hb)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessageFrame(bytes.NewReader(in), 1<<16)
		if err != nil {
			return
		}
		if _, err := AppendMessageFrame(nil, m); err != nil {
			t.Fatalf("decoded message does not re-encode: %v", err)
		}
	})
}
