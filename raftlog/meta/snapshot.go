package meta

import (
	"fmt"
	"maps"
	"slices"
)

// Image snapshot encoding (big endian; strings and lists as in codec.go):
//
//	magic "SLMI" | version u8 = 1
//	index u64 | cluster id str | next producer id i64
//	brokers u32, each: node id i32 | epoch i64 | incarnation [16] |
//	                   client, client plain, internal, gossip, http str | rack str | fenced u8
//	topics u32, each:  id [16] | name str | configs u32 × (key str, value str) |
//	                   partitions u32, each: replicas i32s | isr i32s | leader i32 |
//	                                         leader epoch i32 | partition epoch i32
//
// Brokers are in node id order, topics in id byte order, configs in key
// order, so equal images have equal encodings.

const imageMagic = "SLMI"

// ImageVersion is the snapshot encoding version written by EncodeImage.
const ImageVersion = 1

// EncodeImage encodes img deterministically.
func EncodeImage(img *Image) []byte {
	w := &writer{b: make([]byte, 0, 256)}
	w.b = append(w.b, imageMagic...)
	w.u8(ImageVersion)
	w.u64(img.Index())
	w.str(img.ClusterID())
	w.i64(img.NextProducerID())
	brokers := img.Brokers()
	w.u32(uint32(len(brokers)))
	for _, b := range brokers {
		w.i32(b.NodeID)
		w.i64(b.Epoch)
		w.b = append(w.b, b.Incarnation[:]...)
		writeAddresses(w, b.Addresses)
		w.str(b.Rack)
		w.boolean(b.Fenced)
	}
	var ids []TopicID
	if img != nil {
		ids = img.sortedTopicIDs()
	}
	w.u32(uint32(len(ids)))
	for _, id := range ids {
		t := img.topics[id]
		w.id(t.ID)
		w.str(t.Name)
		writeConfigs(w, t.Configs)
		w.u32(uint32(len(t.Partitions)))
		for _, p := range t.Partitions {
			w.i32s(p.Replicas)
			w.i32s(p.ISR)
			w.i32(p.Leader)
			w.i32(p.LeaderEpoch)
			w.i32(p.PartitionEpoch)
		}
	}
	return w.b
}

// DecodeImage decodes an EncodeImage encoding. It checks the structure
// (unique brokers, topic ids and names; ISR and leader within the replicas)
// and returns errors wrapping ErrMalformed.
func DecodeImage(b []byte) (*Image, error) {
	r := &reader{b: b}
	if string(r.take(len(imageMagic), "magic")) != imageMagic || r.err != nil {
		return nil, fmt.Errorf("%w: not an image", ErrMalformed)
	}
	if v := r.u8("version"); v != ImageVersion {
		return nil, fmt.Errorf("%w: image version %d", ErrMalformed, v)
	}
	img := &Image{
		index:          r.u64("index"),
		clusterID:      r.str("cluster id"),
		nextProducerID: r.i64("next producer id"),
		brokers:        map[int32]*Broker{},
		topics:         map[TopicID]*Topic{},
		names:          map[string]TopicID{},
	}
	nb := r.count(4+8+16+6*4+1, "brokers")
	for range nb {
		br := &Broker{NodeID: r.i32("node id"), Epoch: r.i64("epoch")}
		copy(br.Incarnation[:], r.take(16, "incarnation"))
		br.Addresses = readAddresses(r)
		br.Rack = r.str("rack")
		br.Fenced = r.boolean("fenced")
		if _, dup := img.brokers[br.NodeID]; dup && r.err == nil {
			r.fail(fmt.Sprintf("duplicate broker %d", br.NodeID))
		}
		img.brokers[br.NodeID] = br
	}
	nt := r.count(16+4+4+4, "topics")
	for range nt {
		t := &Topic{ID: r.id("topic id"), Name: r.str("topic name"), Configs: readConfigs(r)}
		np := r.count(4+4+4+4+4, "partitions")
		if np == 0 && r.err == nil {
			r.fail(fmt.Sprintf("topic %v has no partitions", t.ID))
		}
		if np > 0 {
			t.Partitions = make([]Partition, np)
		}
		for i := range t.Partitions {
			p := Partition{Replicas: r.i32s("replicas"), ISR: r.i32s("isr"), Leader: r.i32("leader"),
				LeaderEpoch: r.i32("leader epoch"), PartitionEpoch: r.i32("partition epoch")}
			if r.err == nil && !validPartition(p) {
				r.fail(fmt.Sprintf("topic %v partition %d: inconsistent replicas, isr or leader", t.ID, i))
			}
			t.Partitions[i] = p
		}
		if r.err != nil {
			break
		}
		if _, dup := img.topics[t.ID]; dup {
			r.fail(fmt.Sprintf("duplicate topic id %v", t.ID))
		}
		if _, dup := img.names[t.Name]; dup {
			r.fail(fmt.Sprintf("duplicate topic name %q", t.Name))
		}
		img.topics[t.ID] = t
		img.names[t.Name] = t.ID
	}
	r.end("image")
	if r.err != nil {
		return nil, r.err
	}
	return img, nil
}

func validPartition(p Partition) bool {
	if len(p.Replicas) == 0 {
		return false
	}
	for i, x := range p.Replicas {
		if slices.Contains(p.Replicas[:i], x) {
			return false
		}
	}
	for i, x := range p.ISR {
		if !slices.Contains(p.Replicas, x) || slices.Contains(p.ISR[:i], x) {
			return false
		}
	}
	return p.Leader == NoLeader || slices.Contains(p.ISR, p.Leader)
}

// Equal reports whether two images hold the same state.
func (img *Image) Equal(o *Image) bool {
	if img.Index() != o.Index() || img.ClusterID() != o.ClusterID() || img.NextProducerID() != o.NextProducerID() {
		return false
	}
	if !slices.Equal(img.Brokers(), o.Brokers()) {
		return false
	}
	a, b := img.Topics(), o.Topics()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Name != b[i].Name || !maps.Equal(a[i].Configs, b[i].Configs) ||
			!slices.EqualFunc(a[i].Partitions, b[i].Partitions, partitionEqual) {
			return false
		}
	}
	return true
}

func partitionEqual(a, b Partition) bool {
	return slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.ISR, b.ISR) && a.Leader == b.Leader &&
		a.LeaderEpoch == b.LeaderEpoch && a.PartitionEpoch == b.PartitionEpoch
}
