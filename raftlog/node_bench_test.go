package raftlog

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// BenchmarkProposeThreeVoters measures one metadata command's round trip
// through a three-voter cluster on loopback TCP: propose on the leader,
// fsync on a quorum, apply, result back to the caller.
func BenchmarkProposeThreeVoters(b *testing.B) {
	h := newHarness(b, []uint64{1, 2, 3}, nil)
	h.startAll()
	leader := h.member(h.waitLeader(10 * time.Second)).node
	ctx := context.Background()
	cmd := meta.EncodeCommand(regCmd(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := leader.Propose(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessageFrame measures framing and parsing one append message
// carrying 16 entries of 256 bytes.
func BenchmarkMessageFrame(b *testing.B) {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3))}
	for i := range 16 {
		m.Entries = append(m.Entries, &raftpb.Entry{Index: new(uint64(i)), Term: new(uint64(3)), Data: make([]byte, 256)})
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = AppendMessageFrame(buf[:0], m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ReadMessageFrame(bytes.NewReader(buf), len(buf)); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
