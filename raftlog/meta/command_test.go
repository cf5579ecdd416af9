package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func tid(b byte) TopicID { return TopicID{0: b, 15: b} }

func sampleCommands() []Command {
	return []Command{
		RegisterBroker{NodeID: 1, ClusterID: "c1", Incarnation: [16]byte{1}, Rack: "r1",
			Addresses: Addresses{Client: "a:1", ClientPlain: "a:2", Internal: "a:3", Gossip: "a:4", HTTP: "a:5"}},
		FenceBroker{NodeID: 2, BrokerEpoch: 17},
		UnfenceBroker{NodeID: 3, BrokerEpoch: 1 << 40},
		CreateTopic{Name: "orders", TopicID: tid(7), Partitions: [][]int32{{1, 2, 3}, {2, 3, 1}},
			Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"}},
		CreateTopic{Name: "t", TopicID: tid(8), Partitions: [][]int32{{1}}},
		DeleteTopic{TopicID: tid(7)},
		CreatePartitions{TopicID: tid(7), Assignments: [][]int32{{3, 1, 2}}},
		ChangePartition{TopicID: tid(7), Partition: 1, Leader: -1, ISR: []int32{2}, LeaderEpoch: 4, PartitionEpoch: 9},
		AllocateProducerIDs{NodeID: 1, BrokerEpoch: 5},
		AlterPartition{ProposerID: 2, ProposerEpoch: 1 << 33, Partitions: []AlterPartitionItem{
			{TopicID: tid(7), Partition: 1, LeaderEpoch: 4, PartitionEpoch: 9,
				ISR: []ISRMember{{ID: 2, BrokerEpoch: NoBrokerEpoch}, {ID: 3, BrokerEpoch: 12}}},
			{TopicID: tid(8), Partition: 0, LeaderEpoch: 0, PartitionEpoch: 1},
		}},
		AlterPartition{ProposerID: 1, ProposerEpoch: 5},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		t.Run(c.Type().String(), func(t *testing.T) {
			b := EncodeCommand(c)
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("DecodeCommand(%x) = %v", b, err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("DecodeCommand(%x) = %#v, want %#v", b, got, c)
			}
			if again := EncodeCommand(got); !bytes.Equal(again, b) {
				t.Fatalf("re-encode %x, want %x", again, b)
			}
			for cut := range len(b) {
				if _, err := DecodeCommand(b[:cut]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("DecodeCommand(%x) = %v, want ErrMalformed", b[:cut], err)
				}
			}
			if _, err := DecodeCommand(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("trailing byte: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestCommandEncodingDeterministic(t *testing.T) {
	c := CreateTopic{Name: "x", TopicID: tid(1), Partitions: [][]int32{{1}}, Configs: map[string]string{}}
	for i := range 50 {
		c.Configs[string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	first := EncodeCommand(c)
	for range 20 {
		if !bytes.Equal(EncodeCommand(c), first) {
			t.Fatal("encoding depends on map order")
		}
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	// An AlterPartition item claiming 65536 ISR members and carrying none.
	hugeISR := EncodeCommand(AlterPartition{ProposerID: 1, ProposerEpoch: 1, Partitions: []AlterPartitionItem{{TopicID: tid(1)}}})
	binary.BigEndian.PutUint32(hugeISR[len(hugeISR)-4:], 1<<16)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"bad version", []byte{2, 1}, ErrUnknownCommand},
		{"bad type", []byte{1, 99}, ErrUnknownCommand},
		{"huge count", []byte{1, byte(TypeCreatePartitions), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"huge string", []byte{1, byte(TypeCreateTopic), 0x7f, 0xff, 0xff, 0xff}, ErrMalformed},
		{"huge alter count", []byte{1, byte(TypeAlterPartition), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"huge isr count", hugeISR, ErrMalformed},
		{"unsorted configs", EncodeCommand(CreateTopic{Name: "x", TopicID: tid(1), Partitions: [][]int32{{1}},
			Configs: map[string]string{"a": "1", "b": "2"}})[:0], ErrMalformed},
	}
	// Swap the two config entries of a valid encoding to make them unsorted.
	good := EncodeCommand(CreateTopic{Name: "x", TopicID: tid(1), Partitions: [][]int32{{1}}, Configs: map[string]string{"a": "1", "b": "2"}})
	bad := bytes.Clone(good)
	ia := bytes.Index(bad, []byte{0, 0, 0, 1, 'a'})
	ib := bytes.Index(bad, []byte{0, 0, 0, 1, 'b'})
	bad[ia+4], bad[ib+4] = 'b', 'a'
	cases[len(cases)-1].in = bad
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeCommand(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("DecodeCommand(%x) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(EncodeCommand(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if again := EncodeCommand(c); !bytes.Equal(again, b) {
			t.Fatalf("DecodeCommand(%x) re-encodes to %x", b, again)
		}
		// Applying any decodable command to a small image must not panic.
		img := fuzzImage(t)
		_, _, _ = Apply(img, img.Index()+1, c)
	})
}

func FuzzDecodeImage(f *testing.F) {
	f.Add(EncodeImage(nil))
	f.Add(EncodeImage(fuzzImage(f)))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := DecodeImage(b)
		if err != nil {
			return
		}
		enc := EncodeImage(img)
		img2, err := DecodeImage(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !img.Equal(img2) || !bytes.Equal(EncodeImage(img2), enc) {
			t.Fatal("image encoding not stable")
		}
		for _, c := range sampleCommands() {
			_, _, _ = Apply(img, img.Index()+1, c)
		}
	})
}

func fuzzImage(tb testing.TB) *Image {
	tb.Helper()
	var img *Image
	cmds := []Command{
		reg(1, "r1"), reg(2, "r2"), reg(3, "r1"),
		UnfenceBroker{NodeID: 1, BrokerEpoch: 1}, UnfenceBroker{NodeID: 2, BrokerEpoch: 2},
		CreateTopic{Name: "orders", TopicID: tid(7), Partitions: [][]int32{{1, 2, 3}, {2, 3, 1}}},
	}
	for i, c := range cmds {
		var err error
		img, _, err = Apply(img, uint64(i+1), c)
		if err != nil {
			tb.Fatal(err)
		}
	}
	return img
}

func reg(id int32, rack string) RegisterBroker {
	return RegisterBroker{NodeID: id, ClusterID: "cluster", Incarnation: [16]byte{byte(id), 1}, Rack: rack,
		Addresses: Addresses{Internal: "10.0.0.1:9093"}}
}

func TestTopicID(t *testing.T) {
	id, err := NewTopicID(bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.String(), "00000000-0000-4000-8000-000000000000"; got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	if id.IsZero() || !(TopicID{}).IsZero() {
		t.Fatal("IsZero")
	}
	if _, err := NewTopicID(bytes.NewReader(nil)); err == nil {
		t.Fatal("short reader accepted")
	}
	a, _ := NewTopicID(nil)
	b, _ := NewTopicID(nil)
	if a == b {
		t.Fatal("two random ids equal")
	}
}
