package meta

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// members lists ISR members without broker epochs (NoBrokerEpoch).
func members(ids ...int32) []ISRMember {
	out := make([]ISRMember, len(ids))
	for i, id := range ids {
		out[i] = ISRMember{ID: id, BrokerEpoch: NoBrokerEpoch}
	}
	return out
}

func item(id TopicID, p int32, le, pe int32, isr ...ISRMember) AlterPartitionItem {
	return AlterPartitionItem{TopicID: id, Partition: p, LeaderEpoch: le, PartitionEpoch: pe, ISR: isr}
}

var logs = tid(9)

// alterSetup is baseSetup plus "logs" with partitions [1 2] and [1 3],
// both led by broker 1 (index 8).
func alterSetup(more ...Command) []Command {
	return append(append(baseSetup(), CreateTopic{Name: "logs", TopicID: logs, Partitions: [][]int32{{1, 2}, {1, 3}}}), more...)
}

// rejected is one expected Delta.Rejected entry.
type rejected struct {
	id   TopicID
	p    int32
	want error
}

func TestApplyAlterPartition(t *testing.T) {
	cases := []struct {
		name     string
		setup    []Command
		cmd      AlterPartition
		wantErr  error      // the whole command
		rejected []rejected // items refused, in order
		check    func(t *testing.T, img *Image, d Delta)
	}{
		{
			name: "shrink bumps only the partition epoch", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{item(orders, 0, 0, 0, members(3, 1)...)}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 1, []int32{1, 3}, 0, 1) // assignment order, leader kept
				wantLocal(t, d, 1, "update-leader/0")
				wantLocal(t, d, 2)
				wantLocal(t, d, 3)
			},
		},
		{
			name: "a batch changes several partitions of several topics", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{
				item(logs, 1, 0, 0, members(1)...), item(orders, 0, 0, 0, members(1, 2)...), item(logs, 0, 0, 0, members(1)...)}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 1, []int32{1, 2}, 0, 1)
				wantPart(t, img, logs, 0, 1, []int32{1}, 0, 1)
				wantPart(t, img, logs, 1, 1, []int32{1}, 0, 1)
				if len(d.Partitions) != 3 || d.Partitions[0].TopicID != orders || d.Partitions[1].Partition != 0 {
					t.Fatalf("delta partitions not sorted: %+v", d.Partitions)
				}
			},
		},
		{
			name: "stale and foreign items are rejected, the others applied", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{
				item(logs, 0, 0, 1, members(1)...),      // partition epoch from the future
				item(logs, 1, 0, 0, members(1)...),      // fine
				item(orders, 1, 0, 0, members(1, 2)...), // led by 2
				item(orders, 0, 1, 0, members(1)...),    // leader epoch
				item(tid(0x33), 0, 0, 0, members(1)...), // no such topic
				item(logs, 5, 0, 0, members(1)...),      // no such partition
				item(logs, 1, 0, 0, members(1, 3)...),   // listed again
			}},
			rejected: []rejected{
				{logs, 0, ErrStaleEpoch}, {orders, 1, ErrNotPartitionLeader}, {orders, 0, ErrStaleEpoch},
				{tid(0x33), 0, ErrUnknownTopic}, {logs, 5, ErrUnknownPartition}, {logs, 1, ErrDuplicatePartition},
			},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, logs, 1, 1, []int32{1}, 0, 1)
				wantPart(t, img, logs, 0, 1, []int32{1, 2}, 0, 0)
				wantPart(t, img, orders, 0, 1, []int32{1, 2, 3}, 0, 0)
				wantPart(t, img, orders, 1, 2, []int32{2, 3, 1}, 0, 0)
				if len(d.Partitions) != 1 {
					t.Fatalf("delta partitions %+v", d.Partitions)
				}
			},
		},
		{
			name: "rejections alone leave the image as it was", setup: alterSetup(),
			cmd:      AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{item(orders, 0, 0, 0)}},
			rejected: []rejected{{orders, 0, ErrInvalidISR}},
			check: func(t *testing.T, img *Image, d Delta) {
				if d.Changed() || img.Index() != 8 {
					t.Fatalf("delta %+v, index %d", d, img.Index())
				}
				for id := int32(1); id <= 3; id++ {
					wantLocal(t, d, id)
				}
			},
		},
		{
			name: "restating the ISR is a no-op", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{item(orders, 0, 0, 0, members(3, 2, 1)...)}},
			check: func(t *testing.T, img *Image, d Delta) {
				if !d.Empty() || img.Index() != 8 {
					t.Fatalf("delta %+v, index %d", d, img.Index())
				}
			},
		},
		{
			name: "no items: the proposer check alone", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 2, ProposerEpoch: 2},
			check: func(t *testing.T, img *Image, d Delta) {
				if !d.Empty() {
					t.Fatalf("delta %+v", d)
				}
			},
		},
		{
			name: "invalid ISRs", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{
				item(orders, 0, 0, 0, members(1, 1)...),
				item(logs, 0, 0, 0, members(1, 3)...),
				item(logs, 1, 0, 0, members(3)...),
				item(orders, 1, 0, 0, members(2, 3, 1, 2)...),
			}},
			rejected: []rejected{{orders, 0, ErrInvalidISR}, {logs, 0, ErrInvalidISR}, {logs, 1, ErrInvalidISR}, {orders, 1, ErrNotPartitionLeader}},
		},
		{
			name: "the leader must be in the ISR", setup: alterSetup(),
			cmd:      AlterPartition{ProposerID: 2, ProposerEpoch: 2, Partitions: []AlterPartitionItem{item(orders, 1, 0, 0, members(3, 1)...)}},
			rejected: []rejected{{orders, 1, ErrInvalidISR}},
		},
		{
			name:  "expand with the broker epoch the leader saw",
			setup: alterSetup(ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1}}),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{
				item(orders, 0, 0, 1, ISRMember{ID: 1, BrokerEpoch: 1}, ISRMember{ID: 2, BrokerEpoch: 2}, ISRMember{ID: 3, BrokerEpoch: NoBrokerEpoch})}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 1, []int32{1, 2, 3}, 0, 2)
			},
		},
		{
			name: "KIP-903: a member that restarted since the leader saw it is refused",
			setup: alterSetup(ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1}},
				reg(2, "b"), UnfenceBroker{NodeID: 2, BrokerEpoch: 10}), // broker 2 is back with epoch 10
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{
				item(orders, 0, 0, 1, ISRMember{ID: 1, BrokerEpoch: 1}, ISRMember{ID: 2, BrokerEpoch: 2}),
				item(logs, 0, 0, 1, ISRMember{ID: 1, BrokerEpoch: 1}, ISRMember{ID: 2, BrokerEpoch: 10}),
			}},
			rejected: []rejected{{orders, 0, ErrIneligibleReplica}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 1, []int32{1}, 0, 1)
				wantPart(t, img, logs, 0, 1, []int32{1, 2}, 0, 2) // restart swept it out; back with its new epoch
			},
		},
		{
			name: "a fenced broker cannot be added",
			setup: alterSetup(ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1, 3}},
				FenceBroker{NodeID: 2, BrokerEpoch: 2}),
			cmd:      AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{item(orders, 0, 0, 1, members(1, 2, 3)...)}},
			rejected: []rejected{{orders, 0, ErrIneligibleReplica}},
		},
		{
			name: "a member staying is not checked against its epoch", setup: alterSetup(),
			cmd: AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{
				item(orders, 0, 0, 0, ISRMember{ID: 1, BrokerEpoch: 77}, ISRMember{ID: 2, BrokerEpoch: 77})}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 1, []int32{1, 2}, 0, 1)
			},
		},
		{
			name: "unknown proposer", setup: alterSetup(),
			cmd:     AlterPartition{ProposerID: 9, ProposerEpoch: 1, Partitions: []AlterPartitionItem{item(orders, 0, 0, 0, members(1)...)}},
			wantErr: ErrUnknownBroker,
		},
		{
			name: "stale proposer epoch", setup: alterSetup(),
			cmd:     AlterPartition{ProposerID: 1, ProposerEpoch: 2, Partitions: []AlterPartitionItem{item(orders, 0, 0, 0, members(1)...)}},
			wantErr: ErrStaleBrokerEpoch,
		},
		{
			name: "fenced proposer", setup: alterSetup(FenceBroker{NodeID: 3, BrokerEpoch: 3}),
			cmd:     AlterPartition{ProposerID: 3, ProposerEpoch: 3},
			wantErr: ErrFencedBroker,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := applyAll(t, tc.setup)
			before := EncodeImage(base)
			index := uint64(len(tc.setup) + 1)
			img, d, err := Apply(base, index, tc.cmd)
			if !bytes.Equal(EncodeImage(base), before) {
				t.Fatal("Apply modified its input image")
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || img != base || !d.Empty() {
					t.Fatalf("Apply = %v (delta %+v), want %v and no change", err, d, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply = %v", err)
			}
			if len(d.Rejected) != len(tc.rejected) {
				t.Fatalf("rejected %v, want %d items", d.Rejected, len(tc.rejected))
			}
			for i, r := range tc.rejected {
				got := d.Rejected[i]
				if got.TopicID != r.id || got.Partition != r.p || !errors.Is(got.Err, r.want) {
					t.Fatalf("rejection %d = %v/%d %v, want %v/%d %v", i, got.TopicID, got.Partition, got.Err, r.id, r.p, r.want)
				}
			}
			switch {
			case d.Changed():
				if d.Index != index || img.Index() != index {
					t.Fatalf("delta index %d, image index %d, want %d", d.Index, img.Index(), index)
				}
			case img != base:
				t.Fatal("a delta without changes came with a new image")
			case len(d.Rejected) > 0 && d.Index != index:
				t.Fatalf("rejection-only delta index %d, want %d", d.Index, index)
			}
			if len(d.Rejected) > 0 && d.Empty() {
				t.Fatal("a delta with rejections is Empty")
			}
			for _, pc := range d.Partitions {
				if pc.Old.Leader != pc.New.Leader || pc.Old.LeaderEpoch != pc.New.LeaderEpoch || pc.New.Leader != tc.cmd.ProposerID {
					t.Fatalf("AlterPartition moved leadership: %+v -> %+v", *pc.Old, *pc.New)
				}
			}
			checkInvariants(t, img)
			if tc.check != nil {
				tc.check(t, img, d)
			}
		})
	}
}

// TestAlterPartitionEncoding pins the command's bytes: they are in the raft
// log, so the format must not drift.
func TestAlterPartitionEncoding(t *testing.T) {
	c := AlterPartition{ProposerID: 2, ProposerEpoch: 300, Partitions: []AlterPartitionItem{
		{TopicID: tid(7), Partition: 1, LeaderEpoch: 4, PartitionEpoch: 9, ISR: []ISRMember{{ID: 2, BrokerEpoch: -1}, {ID: 3, BrokerEpoch: 12}}},
	}}
	want := "01" + "09" + // version, type
		"00000002" + "000000000000012c" + // proposer id, epoch
		"00000001" + // items
		"07000000000000000000000000000007" + "00000001" + "00000004" + "00000009" + // topic id, partition, epochs
		"00000002" + "00000002" + "ffffffffffffffff" + "00000003" + "000000000000000c" // isr
	got := EncodeCommand(c)
	if hex.EncodeToString(got) != want {
		t.Fatalf("EncodeCommand = %x, want %s", got, want)
	}
	dec, err := DecodeCommand(got)
	if err != nil || !reflect.DeepEqual(dec, c) {
		t.Fatalf("DecodeCommand(%x) = %#v, %v, want %#v", got, dec, err, c)
	}
}
