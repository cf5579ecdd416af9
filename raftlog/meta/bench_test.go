package meta

import (
	"fmt"
	"testing"
)

// bigImage has 6 brokers and topics×8 partitions of rf 3.
func bigImage(b *testing.B, topics int) *Image {
	var img *Image
	index := uint64(0)
	apply := func(c Command) {
		index++
		var err error
		if img, _, err = Apply(img, index, c); err != nil {
			b.Fatal(err)
		}
	}
	for id := int32(1); id <= 6; id++ {
		apply(reg(id, fmt.Sprint("r", id%3)))
	}
	for id := int32(1); id <= 6; id++ {
		apply(UnfenceBroker{NodeID: id, BrokerEpoch: int64(id)})
	}
	for i := range topics {
		as, err := Place(img.PlacementBrokers(), 8, 3, i)
		if err != nil {
			b.Fatal(err)
		}
		apply(CreateTopic{Name: fmt.Sprintf("topic-%d", i), TopicID: TopicID{0: byte(i), 1: byte(i >> 8), 15: 1}, Partitions: as})
	}
	return img
}

// BenchmarkApplyChangePartition measures an ISR change in an image of 1000
// topics (8000 partitions): the copy-on-write cost of one command.
func BenchmarkApplyChangePartition(b *testing.B) {
	img := bigImage(b, 1000)
	top, _ := img.TopicByName("topic-500")
	index := img.Index()
	b.ReportAllocs()
	for b.Loop() {
		p := top.Partitions[0]
		cur, _ := img.Partition(top.ID, 0)
		isr := p.Replicas
		if len(cur.ISR) == len(p.Replicas) {
			isr = p.Replicas[:2]
		}
		index++
		next, _, err := Apply(img, index, ChangePartition{TopicID: top.ID, Leader: cur.Leader, ISR: isr,
			LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch})
		if err != nil {
			b.Fatal(err)
		}
		img = next
	}
}

func BenchmarkEncodeImage(b *testing.B) {
	img := bigImage(b, 1000)
	b.SetBytes(int64(len(EncodeImage(img))))
	b.ReportAllocs()
	for b.Loop() {
		EncodeImage(img)
	}
}

func BenchmarkDecodeImage(b *testing.B) {
	enc := EncodeImage(bigImage(b, 1000))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeImage(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	enc := EncodeCommand(ChangePartition{TopicID: tid(1), Partition: 3, Leader: 2, ISR: []int32{1, 2, 3}, LeaderEpoch: 4, PartitionEpoch: 9})
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(enc); err != nil {
			b.Fatal(err)
		}
	}
}
