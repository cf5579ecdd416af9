package meta

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

var orders = tid(7)

// baseSetup registers and unfences brokers 1..3 (epochs 1..3) and creates
// "orders" with partitions [1 2 3] and [2 3 1] at index 7.
func baseSetup() []Command {
	return []Command{
		reg(1, "a"), reg(2, "b"), reg(3, "c"),
		UnfenceBroker{NodeID: 1, BrokerEpoch: 1}, UnfenceBroker{NodeID: 2, BrokerEpoch: 2}, UnfenceBroker{NodeID: 3, BrokerEpoch: 3},
		CreateTopic{Name: "orders", TopicID: orders, Partitions: [][]int32{{1, 2, 3}, {2, 3, 1}}},
	}
}

func applyAll(t *testing.T, cmds []Command) *Image {
	t.Helper()
	var img *Image
	for i, c := range cmds {
		var err error
		img, _, err = Apply(img, uint64(i+1), c)
		if err != nil {
			t.Fatalf("setup command %d (%v): %v", i+1, c.Type(), err)
		}
	}
	return img
}

func part(t *testing.T, img *Image, id TopicID, p int32) Partition {
	t.Helper()
	pp, ok := img.Partition(id, p)
	if !ok {
		t.Fatalf("partition %v/%d missing", id, p)
	}
	return pp
}

func wantPart(t *testing.T, img *Image, id TopicID, p int32, leader int32, isr []int32, le, pe int32) {
	t.Helper()
	got := part(t, img, id, p)
	if got.Leader != leader || !slices.Equal(got.ISR, isr) || got.LeaderEpoch != le || got.PartitionEpoch != pe {
		t.Fatalf("partition %d = leader %d isr %v epochs %d/%d, want leader %d isr %v epochs %d/%d",
			p, got.Leader, got.ISR, got.LeaderEpoch, got.PartitionEpoch, leader, isr, le, pe)
	}
}

func kinds(lcs []LocalChange) []string {
	var out []string
	for _, lc := range lcs {
		out = append(out, lc.Kind.String()+"/"+string(rune('0'+lc.Partition)))
	}
	return out
}

func wantLocal(t *testing.T, d Delta, node int32, want ...string) {
	t.Helper()
	if got := kinds(d.LocalChanges(node)); !slices.Equal(got, want) {
		t.Fatalf("LocalChanges(%d) = %v, want %v", node, got, want)
	}
}

func TestApply(t *testing.T) {
	cases := []struct {
		name    string
		setup   []Command
		cmd     Command
		wantErr error
		check   func(t *testing.T, img *Image, d Delta)
	}{
		{
			name: "register new broker", setup: baseSetup(), cmd: reg(4, "a"),
			check: func(t *testing.T, img *Image, d Delta) {
				b, ok := img.Broker(4)
				if !ok || b.Epoch != 8 || !b.Fenced || b.Rack != "a" || img.ClusterID() != "cluster" {
					t.Fatalf("broker 4 = %+v, %v", b, ok)
				}
				if len(d.Brokers) != 1 || d.Brokers[0].Old != nil || d.Brokers[0].New.Epoch != 8 || len(d.Partitions) != 0 {
					t.Fatalf("delta %+v", d)
				}
			},
		},
		{
			name: "register with other cluster id", setup: baseSetup(),
			cmd:     RegisterBroker{NodeID: 9, ClusterID: "other", Incarnation: [16]byte{9}},
			wantErr: ErrClusterIDMismatch,
		},
		{
			name: "register without incarnation", cmd: RegisterBroker{NodeID: 1, ClusterID: "c"}, wantErr: ErrInvalidBroker,
		},
		{
			name: "register negative node id", cmd: RegisterBroker{NodeID: -1, ClusterID: "c", Incarnation: [16]byte{1}}, wantErr: ErrInvalidBroker,
		},
		{
			name: "live broker with another incarnation", setup: baseSetup(),
			cmd:     RegisterBroker{NodeID: 1, ClusterID: "cluster", Incarnation: [16]byte{0xee}},
			wantErr: ErrDuplicateBroker,
		},
		{
			name: "fenced broker with another incarnation", setup: append(baseSetup(), FenceBroker{NodeID: 1, BrokerEpoch: 1}),
			cmd: RegisterBroker{NodeID: 1, ClusterID: "cluster", Incarnation: [16]byte{0xee}},
			check: func(t *testing.T, img *Image, d Delta) {
				if b, _ := img.Broker(1); b.Epoch != 9 || b.Incarnation != [16]byte{0xee} || !b.Fenced {
					t.Fatalf("broker 1 = %+v", b)
				}
				if len(d.Partitions) != 0 {
					t.Fatalf("fenced re-registration changed partitions: %+v", d.Partitions)
				}
			},
		},
		{
			name: "restart of a live broker fences its old epoch", setup: baseSetup(), cmd: reg(1, "a"),
			check: func(t *testing.T, img *Image, d Delta) {
				if b, _ := img.Broker(1); b.Epoch != 8 || !b.Fenced {
					t.Fatalf("broker 1 = %+v", b)
				}
				wantPart(t, img, orders, 0, 2, []int32{2, 3}, 1, 1)
				wantPart(t, img, orders, 1, 2, []int32{2, 3}, 0, 1)
			},
		},
		{
			name: "fence moves leadership and shrinks ISR", setup: baseSetup(), cmd: FenceBroker{NodeID: 1, BrokerEpoch: 1},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 2, []int32{2, 3}, 1, 1)
				wantPart(t, img, orders, 1, 2, []int32{2, 3}, 0, 1)
				wantLocal(t, d, 1, "become-follower/0")
				wantLocal(t, d, 2, "become-leader/0", "update-leader/1")
				wantLocal(t, d, 3, "become-follower/0")
			},
		},
		{
			name: "fence with stale epoch", setup: baseSetup(), cmd: FenceBroker{NodeID: 1, BrokerEpoch: 99}, wantErr: ErrStaleBrokerEpoch,
		},
		{
			name: "fence unknown broker", setup: baseSetup(), cmd: FenceBroker{NodeID: 9, BrokerEpoch: 1}, wantErr: ErrUnknownBroker,
		},
		{
			name: "fence of a fenced broker changes nothing", setup: append(baseSetup(), FenceBroker{NodeID: 1, BrokerEpoch: 1}),
			cmd: FenceBroker{NodeID: 1, BrokerEpoch: 1},
			check: func(t *testing.T, img *Image, d Delta) {
				if !d.Empty() || img.Index() != 8 {
					t.Fatalf("delta %+v, index %d", d, img.Index())
				}
			},
		},
		{
			name:  "fencing every replica keeps the last ISR member and no leader",
			setup: append(baseSetup(), FenceBroker{NodeID: 1, BrokerEpoch: 1}, FenceBroker{NodeID: 2, BrokerEpoch: 2}),
			cmd:   FenceBroker{NodeID: 3, BrokerEpoch: 3},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, NoLeader, []int32{3}, 3, 3)
				wantPart(t, img, orders, 1, NoLeader, []int32{3}, 2, 3)
				wantLocal(t, d, 3, "become-follower/0", "become-follower/1")
			},
		},
		{
			name: "unfence elects for leaderless partitions",
			setup: append(baseSetup(), FenceBroker{NodeID: 1, BrokerEpoch: 1}, FenceBroker{NodeID: 2, BrokerEpoch: 2},
				FenceBroker{NodeID: 3, BrokerEpoch: 3}),
			cmd: UnfenceBroker{NodeID: 3, BrokerEpoch: 3},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 3, []int32{3}, 4, 4)
				wantPart(t, img, orders, 1, 3, []int32{3}, 3, 4)
				wantLocal(t, d, 3, "become-leader/0", "become-leader/1")
			},
		},
		{
			name: "create topic", setup: append(baseSetup(), FenceBroker{NodeID: 1, BrokerEpoch: 1}),
			cmd: CreateTopic{Name: "logs", TopicID: tid(9), Partitions: [][]int32{{1, 2}, {3, 1}}, Configs: map[string]string{"k": "v"}},
			check: func(t *testing.T, img *Image, d Delta) {
				top, ok := img.TopicByName("logs")
				if !ok || top.ID != tid(9) || top.Configs["k"] != "v" || len(top.Partitions) != 2 {
					t.Fatalf("topic %+v", top)
				}
				// Broker 1 is fenced: it is in the (fresh) ISR but cannot lead.
				wantPart(t, img, tid(9), 0, 2, []int32{1, 2}, 0, 0)
				wantPart(t, img, tid(9), 1, 3, []int32{3, 1}, 0, 0)
				wantLocal(t, d, 1, "become-follower/0", "become-follower/1")
				wantLocal(t, d, 2, "become-leader/0")
			},
		},
		{name: "create topic: bad name", setup: baseSetup(), cmd: CreateTopic{Name: "a/b", TopicID: tid(9), Partitions: [][]int32{{1}}}, wantErr: ErrInvalidTopicName},
		{name: "create topic: dot name", setup: baseSetup(), cmd: CreateTopic{Name: "..", TopicID: tid(9), Partitions: [][]int32{{1}}}, wantErr: ErrInvalidTopicName},
		{name: "create topic: name exists", setup: baseSetup(), cmd: CreateTopic{Name: "orders", TopicID: tid(9), Partitions: [][]int32{{1}}}, wantErr: ErrTopicExists},
		{name: "create topic: id exists", setup: baseSetup(), cmd: CreateTopic{Name: "x", TopicID: orders, Partitions: [][]int32{{1}}}, wantErr: ErrTopicExists},
		{name: "create topic: zero id", setup: baseSetup(), cmd: CreateTopic{Name: "x", Partitions: [][]int32{{1}}}, wantErr: ErrInvalidTopicID},
		{name: "create topic: no partitions", setup: baseSetup(), cmd: CreateTopic{Name: "x", TopicID: tid(9)}, wantErr: ErrInvalidAssignment},
		{name: "create topic: unknown broker", setup: baseSetup(), cmd: CreateTopic{Name: "x", TopicID: tid(9), Partitions: [][]int32{{1, 5}}}, wantErr: ErrUnknownBroker},
		{name: "create topic: duplicate replica", setup: baseSetup(), cmd: CreateTopic{Name: "x", TopicID: tid(9), Partitions: [][]int32{{1, 1}}}, wantErr: ErrInvalidAssignment},
		{name: "create topic: uneven rf", setup: baseSetup(), cmd: CreateTopic{Name: "x", TopicID: tid(9), Partitions: [][]int32{{1, 2}, {1}}}, wantErr: ErrInvalidAssignment},
		{name: "create topic: empty config key", setup: baseSetup(), cmd: CreateTopic{Name: "x", TopicID: tid(9), Partitions: [][]int32{{1}}, Configs: map[string]string{"": "v"}}, wantErr: ErrInvalidConfig},
		{
			name: "delete topic", setup: baseSetup(), cmd: DeleteTopic{TopicID: orders},
			check: func(t *testing.T, img *Image, d Delta) {
				if _, ok := img.TopicByName("orders"); ok {
					t.Fatal("topic still there by name")
				}
				if _, ok := img.Topic(orders); ok {
					t.Fatal("topic still there by id")
				}
				if len(d.Partitions) != 2 || d.Partitions[0].New != nil || d.Partitions[0].Old == nil {
					t.Fatalf("delta %+v", d.Partitions)
				}
				wantLocal(t, d, 1, "delete-replica/0", "delete-replica/1")
			},
		},
		{name: "delete unknown topic", setup: baseSetup(), cmd: DeleteTopic{TopicID: tid(1)}, wantErr: ErrUnknownTopic},
		{
			name: "create partitions", setup: baseSetup(), cmd: CreatePartitions{TopicID: orders, Assignments: [][]int32{{3, 1, 2}}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 2, 3, []int32{3, 1, 2}, 0, 0)
				wantLocal(t, d, 3, "become-leader/2")
				wantLocal(t, d, 1, "become-follower/2")
			},
		},
		{name: "create partitions: wrong rf", setup: baseSetup(), cmd: CreatePartitions{TopicID: orders, Assignments: [][]int32{{3, 1}}}, wantErr: ErrInvalidAssignment},
		{name: "create partitions: unknown topic", setup: baseSetup(), cmd: CreatePartitions{TopicID: tid(1), Assignments: [][]int32{{1}}}, wantErr: ErrUnknownTopic},
		{
			name: "shrink ISR bumps only the partition epoch", setup: baseSetup(),
			cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{3, 1}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 1, []int32{1, 3}, 0, 1) // ISR kept in assignment order
				wantLocal(t, d, 1, "update-leader/0")
				wantLocal(t, d, 2) // followers ignore ISR changes
			},
		},
		{
			name: "leader change bumps both epochs", setup: baseSetup(),
			cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 3, ISR: []int32{2, 3}},
			check: func(t *testing.T, img *Image, d Delta) {
				wantPart(t, img, orders, 0, 3, []int32{2, 3}, 1, 1)
				wantLocal(t, d, 1, "become-follower/0")
				wantLocal(t, d, 3, "become-leader/0")
			},
		},
		{
			name: "stale epochs are fenced", setup: append(baseSetup(), ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1, 2}}),
			cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1}}, wantErr: ErrStaleEpoch,
		},
		{
			name: "restating the current state is a no-op", setup: baseSetup(),
			cmd: ChangePartition{TopicID: orders, Partition: 1, Leader: 2, ISR: []int32{1, 2, 3}},
			check: func(t *testing.T, img *Image, d Delta) {
				if !d.Empty() || img.Index() != 7 {
					t.Fatalf("delta %+v index %d", d, img.Index())
				}
			},
		},
		{name: "ISR outside replicas", setup: baseSetup(), cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1, 4}}, wantErr: ErrInvalidISR},
		{name: "empty ISR", setup: baseSetup(), cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: -1}, wantErr: ErrInvalidISR},
		{name: "duplicate ISR", setup: baseSetup(), cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 1, ISR: []int32{1, 1}}, wantErr: ErrInvalidISR},
		{name: "leader outside ISR", setup: baseSetup(), cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 2, ISR: []int32{1, 3}}, wantErr: ErrIneligibleLeader},
		{
			name: "fenced broker cannot join the ISR", setup: append(baseSetup(), FenceBroker{NodeID: 3, BrokerEpoch: 3}),
			cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 3, ISR: []int32{1, 2, 3}, PartitionEpoch: 1}, wantErr: ErrInvalidISR,
		},
		{
			name: "fenced broker cannot lead",
			setup: append(baseSetup(), FenceBroker{NodeID: 1, BrokerEpoch: 1}, FenceBroker{NodeID: 2, BrokerEpoch: 2},
				FenceBroker{NodeID: 3, BrokerEpoch: 3}),
			cmd: ChangePartition{TopicID: orders, Partition: 0, Leader: 3, ISR: []int32{3}, LeaderEpoch: 3, PartitionEpoch: 3}, wantErr: ErrIneligibleLeader,
		},
		{name: "unknown partition", setup: baseSetup(), cmd: ChangePartition{TopicID: orders, Partition: 5, Leader: 1, ISR: []int32{1}}, wantErr: ErrUnknownPartition},
		{name: "change on unknown topic", setup: baseSetup(), cmd: ChangePartition{TopicID: tid(1), Leader: 1, ISR: []int32{1}}, wantErr: ErrUnknownTopic},
		{
			name: "allocate producer ids", setup: append(baseSetup(), AllocateProducerIDs{NodeID: 2, BrokerEpoch: 2}),
			cmd: AllocateProducerIDs{NodeID: 1, BrokerEpoch: 1},
			check: func(t *testing.T, img *Image, d Delta) {
				if d.ProducerIDs == nil || *d.ProducerIDs != (ProducerIDBlock{NodeID: 1, BrokerEpoch: 1, FirstID: 1000, Count: 1000}) {
					t.Fatalf("block %+v", d.ProducerIDs)
				}
				if img.NextProducerID() != 2000 {
					t.Fatalf("next %d", img.NextProducerID())
				}
			},
		},
		{name: "allocate with stale epoch", setup: baseSetup(), cmd: AllocateProducerIDs{NodeID: 1, BrokerEpoch: 2}, wantErr: ErrStaleBrokerEpoch},
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
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Apply(%v) = %v, want %v", tc.cmd.Type(), err, tc.wantErr)
				}
				if img != base || !d.Empty() {
					t.Fatal("rejected command changed the image or produced a delta")
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply(%v) = %v", tc.cmd.Type(), err)
			}
			if d.Changed() && (d.Index != index || img.Index() != index) {
				t.Fatalf("delta index %d, image index %d, want %d", d.Index, img.Index(), index)
			}
			checkInvariants(t, img)
			if tc.check != nil {
				tc.check(t, img, d)
			}
		})
	}
}

func TestApplyRejectsOldIndex(t *testing.T) {
	img := applyAll(t, baseSetup())
	if _, _, err := Apply(img, 7, reg(9, "")); !errors.Is(err, ErrAlreadyApplied) {
		t.Fatalf("Apply at applied index = %v, want ErrAlreadyApplied", err)
	}
}

// checkInvariants asserts what every image must satisfy.
func checkInvariants(t *testing.T, img *Image) {
	t.Helper()
	for _, top := range img.Topics() {
		if id, ok := img.TopicByName(top.Name); !ok || id.ID != top.ID {
			t.Fatalf("topic %q not indexed by name", top.Name)
		}
		for p, pp := range top.Partitions {
			if !validPartition(pp) {
				t.Fatalf("%s/%d invalid: %+v", top.Name, p, pp)
			}
			if pp.Leader != NoLeader {
				if b, ok := img.Broker(pp.Leader); !ok || b.Fenced {
					t.Fatalf("%s/%d led by fenced or unknown broker %d", top.Name, p, pp.Leader)
				}
			}
			for _, r := range pp.Replicas {
				if _, ok := img.Broker(r); !ok {
					t.Fatalf("%s/%d replica %d unknown", top.Name, p, r)
				}
			}
		}
	}
}

func TestImageSnapshotRoundTrip(t *testing.T) {
	img := applyAll(t, append(baseSetup(), FenceBroker{NodeID: 2, BrokerEpoch: 2}, AllocateProducerIDs{NodeID: 1, BrokerEpoch: 1},
		CreateTopic{Name: "cfg", TopicID: tid(3), Partitions: [][]int32{{3}}, Configs: map[string]string{"a": "b"}}))
	b := EncodeImage(img)
	got, err := DecodeImage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(img) || !bytes.Equal(EncodeImage(got), b) {
		t.Fatal("image round trip differs")
	}
	for cut := range len(b) {
		if _, err := DecodeImage(b[:cut]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecodeImage(cut %d) = %v, want ErrMalformed", cut, err)
		}
	}
	var empty *Image
	if got, err := DecodeImage(EncodeImage(empty)); err != nil || !got.Equal(empty) {
		t.Fatalf("empty image: %v", err)
	}
}
