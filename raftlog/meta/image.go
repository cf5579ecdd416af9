package meta

import (
	"maps"
	"slices"
)

// Broker is one broker's registration.
type Broker struct {
	NodeID      int32
	Epoch       int64 // raft index of the registering command
	Incarnation [16]byte
	Addresses   Addresses
	Rack        string
	Fenced      bool
}

// Partition is a partition's replication state.
type Partition struct {
	Replicas       []int32 // assignment, preferred leader first
	ISR            []int32 // in-sync replicas, a subset of Replicas
	Leader         int32   // -1: no leader
	LeaderEpoch    int32   // bumped on every leader change
	PartitionEpoch int32   // bumped on every leader or ISR change
}

// NoLeader is the Leader of a partition that has none.
const NoLeader int32 = -1

// Topic is a topic and its partitions, indexed by partition number.
type Topic struct {
	Name       string
	ID         TopicID
	Configs    map[string]string
	Partitions []Partition
}

// Image is the metadata state after applying a prefix of the raft log.
//
// An Image is immutable: Apply returns a new Image that shares unchanged
// parts with its input. Values handed out by accessors (Topic pointers,
// slices inside Partition and Topic) are shared with the image and must not
// be modified. An Image is safe for concurrent reads. The zero Image and
// nil *Image are the empty image.
type Image struct {
	index          uint64
	clusterID      string
	nextProducerID int64
	brokers        map[int32]*Broker
	topics         map[TopicID]*Topic
	names          map[string]TopicID
}

// Index is the raft index of the last command that changed the image.
func (img *Image) Index() uint64 {
	if img == nil {
		return 0
	}
	return img.index
}

// ClusterID is the cluster id set by the first broker registration.
func (img *Image) ClusterID() string {
	if img == nil {
		return ""
	}
	return img.clusterID
}

// NextProducerID is the first producer id of the next allocated block.
func (img *Image) NextProducerID() int64 {
	if img == nil {
		return 0
	}
	return img.nextProducerID
}

// Broker returns a broker's registration.
func (img *Image) Broker(id int32) (Broker, bool) {
	if img == nil {
		return Broker{}, false
	}
	b, ok := img.brokers[id]
	if !ok {
		return Broker{}, false
	}
	return *b, true
}

// Brokers returns all registrations ordered by node id.
func (img *Image) Brokers() []Broker {
	if img == nil {
		return nil
	}
	out := make([]Broker, 0, len(img.brokers))
	for _, id := range slices.Sorted(maps.Keys(img.brokers)) {
		out = append(out, *img.brokers[id])
	}
	return out
}

// Topic returns a topic by id.
func (img *Image) Topic(id TopicID) (*Topic, bool) {
	if img == nil {
		return nil, false
	}
	t, ok := img.topics[id]
	return t, ok
}

// TopicByName returns a topic by name.
func (img *Image) TopicByName(name string) (*Topic, bool) {
	if img == nil {
		return nil, false
	}
	id, ok := img.names[name]
	if !ok {
		return nil, false
	}
	return img.topics[id], true
}

// Topics returns all topics ordered by name.
func (img *Image) Topics() []*Topic {
	if img == nil {
		return nil
	}
	out := make([]*Topic, 0, len(img.names))
	for _, name := range slices.Sorted(maps.Keys(img.names)) {
		out = append(out, img.topics[img.names[name]])
	}
	return out
}

// Partition returns one partition's state.
func (img *Image) Partition(id TopicID, p int32) (Partition, bool) {
	t, ok := img.Topic(id)
	if !ok || p < 0 || int(p) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[p], true
}

// sortedTopicIDs returns topic ids in byte order, the order in which Apply
// visits topics when one command touches many.
func (img *Image) sortedTopicIDs() []TopicID {
	ids := slices.Collect(maps.Keys(img.topics))
	slices.SortFunc(ids, func(a, b TopicID) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return ids
}

func (img *Image) usable(id int32) bool {
	b, ok := img.brokers[id]
	return ok && !b.Fenced
}
