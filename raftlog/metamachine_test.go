package raftlog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

func applyCmd(t *testing.T, m *MetaMachine, index uint64, cmd meta.Command) MetaResult {
	t.Helper()
	r, ok := m.Apply(index, meta.EncodeCommand(cmd)).(MetaResult)
	if !ok {
		t.Fatal("Apply did not return a MetaResult")
	}
	return r
}

func TestMetaMachineApplyAndSubscribe(t *testing.T) {
	m := NewMetaMachine(0, nil)
	sub := m.Subscribe()
	defer sub.Close()
	u, ok := sub.TryNext()
	if !ok || !u.Reset || u.Image == nil || len(u.Deltas) != 0 {
		t.Fatalf("first update %+v, want a Reset with the current image", u)
	}
	before := m.Image()

	// Several applies before the reader looks: deltas accumulate in order,
	// the image is the newest.
	for i := int32(1); i <= 3; i++ {
		if r := applyCmd(t, m, uint64(i), regCmd(i)); r.Err != nil || len(r.Delta.Brokers) != 1 {
			t.Fatalf("register %d: %+v", i, r)
		}
	}
	other := regCmd(4)
	other.ClusterID = "another-cluster"
	if r := applyCmd(t, m, 4, other); !errors.Is(r.Err, meta.ErrClusterIDMismatch) || !r.Delta.Empty() {
		t.Fatalf("foreign registration: %+v", r)
	}
	if r, ok := m.Apply(5, []byte{0xff}).(MetaResult); !ok || !errors.Is(r.Err, meta.ErrMalformed) {
		t.Fatalf("garbage command: %+v", r)
	}
	select {
	case <-sub.Ready():
	default:
		t.Fatal("Ready not signalled")
	}
	u, ok = sub.TryNext()
	if !ok || u.Reset || len(u.Deltas) != 3 || u.Image != m.Image() {
		t.Fatalf("update: reset %v, %d deltas", u.Reset, len(u.Deltas))
	}
	for i, d := range u.Deltas {
		if d.Index != uint64(i+1) {
			t.Fatalf("delta %d at index %d", i, d.Index)
		}
	}
	if before.Index() != 0 || len(before.Brokers()) != 0 {
		t.Fatal("an earlier image changed")
	}
	if _, ok := sub.TryNext(); ok {
		t.Fatal("update pending after read")
	}

	// Snapshot/restore round trip; subscribers see a Reset.
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := NewMetaMachine(0, nil)
	sub2 := m2.Subscribe()
	if err := m2.Restore(data, 5); err != nil {
		t.Fatal(err)
	}
	if !m2.Image().Equal(m.Image()) {
		t.Fatal("restored image differs")
	}
	u, _ = sub2.TryNext()
	if !u.Reset || u.Image != m2.Image() {
		t.Fatal("restore not published as Reset")
	}
	if err := m2.Restore(data, 1); err == nil {
		t.Fatal("snapshot claiming an index below its image accepted")
	}
	if err := m2.Restore([]byte("junk"), 9); err == nil {
		t.Fatal("junk snapshot accepted")
	}
}

func TestMetaSubscriptionOverflowResets(t *testing.T) {
	m := NewMetaMachine(2, nil)
	sub := m.Subscribe()
	sub.TryNext()
	for i := int32(1); i <= 3; i++ {
		applyCmd(t, m, uint64(i), regCmd(i))
	}
	u, _ := sub.TryNext()
	if !u.Reset || len(u.Deltas) != 1 || u.Deltas[0].Index != 3 || u.Image.Index() != 3 {
		t.Fatalf("overflowed update: reset %v deltas %d", u.Reset, len(u.Deltas))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unfence := meta.EncodeCommand(meta.UnfenceBroker{NodeID: 1, BrokerEpoch: 1})
	go m.Apply(4, unfence)
	u, err := sub.Next(ctx)
	if err != nil || u.Reset || len(u.Deltas) != 1 || u.Deltas[0].Index != 4 {
		t.Fatalf("Next: %+v %v", u, err)
	}
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, ErrUnsubscribed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestEnvelopeAndTracker(t *testing.T) {
	id := requestID{origin: 3, boot: 99, seq: 7}
	b := appendEnvelope(nil, id, []byte("cmd"))
	got, data, err := parseEnvelope(b)
	if err != nil || got != id || string(data) != "cmd" {
		t.Fatalf("parse: %v %v %q", got, err, data)
	}
	for _, bad := range [][]byte{nil, b[:envelopeHeader-1], append([]byte{2}, b[1:]...)} {
		if _, _, err := parseEnvelope(bad); err == nil {
			t.Fatalf("parsed %x", bad)
		}
	}

	tr := newTracker()
	mk := func(seq uint64) *proposal {
		p := &proposal{id: requestID{1, 1, seq}, done: make(chan outcome, 1)}
		tr.add(p)
		return p
	}
	kept, lost, overwritten, covered := mk(1), mk(2), mk(3), mk(4)
	tr.appended(kept.id, 10)
	tr.appended(overwritten.id, 11)
	tr.appended(covered.id, 12)
	tr.endReady()
	if o := <-lost.done; !errors.Is(o.err, ErrProposalDropped) {
		t.Fatalf("unseen proposal: %v", o.err)
	}
	tr.applied(10, kept.id, true, "ok", nil)
	if o := <-kept.done; o.err != nil || o.index != 10 || o.result != "ok" {
		t.Fatalf("kept: %+v", o)
	}
	tr.applied(11, requestID{2, 5, 1}, true, nil, nil) // another request took index 11
	if o := <-overwritten.done; !errors.Is(o.err, ErrProposalDropped) {
		t.Fatalf("overwritten: %v", o.err)
	}
	tr.restored(20)
	if o := <-covered.done; !errors.Is(o.err, ErrProposalUnknown) {
		t.Fatalf("covered by snapshot: %v", o.err)
	}
	if len(tr.byID) != 0 || len(tr.byIndex) != 0 {
		t.Fatalf("tracker leaks: %d %d", len(tr.byID), len(tr.byIndex))
	}
}
