package meta

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// Limits enforced by Apply, so that a committed command cannot make the
// image unboundedly large in one step.
const (
	MaxTopicNameLen       = 249
	MaxPartitionsPerTopic = 1 << 17
	MaxReplicationFactor  = 32
	MaxConfigs            = 1024
	MaxConfigKeyLen       = 255
	ProducerIDBlockSize   = 1000
)

// Apply applies cmd, committed at raft index index, to img and returns the
// new image and what changed. It is pure and deterministic: the same image,
// index and command give the same result on every node (no clock, no
// randomness, no dependence on map order). A rejected command returns img
// itself, an empty Delta and an error wrapping one of the rejection
// sentinels; a command that changes nothing (a ChangePartition restating
// the current leader and ISR) returns img, an empty Delta and nil. An
// AlterPartition whose proposer passes its check returns nil whatever
// becomes of its items: refused ones are listed in Delta.Rejected, and if
// none changed anything the result is img itself with a Delta that holds
// only Index and Rejected. img is never modified.
func Apply(img *Image, index uint64, cmd Command) (*Image, Delta, error) {
	if index <= img.Index() {
		return img, Delta{}, fmt.Errorf("%w: index %d, image at %d", ErrAlreadyApplied, index, img.Index())
	}
	t := newTxn(img)
	var err error
	switch c := cmd.(type) {
	case RegisterBroker:
		err = t.registerBroker(index, c)
	case FenceBroker:
		err = t.fenceBroker(c)
	case UnfenceBroker:
		err = t.unfenceBroker(c)
	case CreateTopic:
		err = t.createTopic(c)
	case DeleteTopic:
		err = t.deleteTopic(c)
	case CreatePartitions:
		err = t.createPartitions(c)
	case ChangePartition:
		err = t.changePartition(c)
	case AllocateProducerIDs:
		err = t.allocateProducerIDs(c)
	case AlterPartition:
		err = t.alterPartition(c)
	default:
		err = fmt.Errorf("%w: %T", ErrUnknownCommand, cmd)
	}
	if err != nil {
		return img, Delta{}, fmt.Errorf("%v at index %d: %w", cmd.Type(), index, err)
	}
	if !t.delta.Changed() {
		if len(t.delta.Rejected) == 0 {
			return img, Delta{}, nil
		}
		return img, Delta{Index: index, Rejected: t.delta.Rejected}, nil
	}
	return t.finish(index)
}

// txn builds the next image copy-on-write: maps and topics are copied the
// first time the command writes to them, never written in place.
type txn struct {
	old        *Image
	img        *Image
	ownBrokers bool
	ownTopics  bool
	ownTopic   map[TopicID]bool
	parts      map[partKey]int // index into delta.Partitions
	delta      Delta
}

type partKey struct {
	id TopicID
	p  int32
}

func newTxn(old *Image) *txn {
	next := &Image{}
	if old != nil {
		*next = *old
	}
	return &txn{old: old, img: next}
}

func (t *txn) finish(index uint64) (*Image, Delta, error) {
	t.img.index = index
	t.delta.Index = index
	slices.SortFunc(t.delta.Brokers, func(a, b BrokerChange) int { return int(a.NodeID) - int(b.NodeID) })
	slices.SortFunc(t.delta.Partitions, func(a, b PartitionChange) int {
		switch {
		case a.TopicID.less(b.TopicID):
			return -1
		case b.TopicID.less(a.TopicID):
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	return t.img, t.delta, nil
}

func (t *txn) setBroker(b *Broker) {
	if !t.ownBrokers {
		t.img.brokers = cloneMap(t.img.brokers)
		t.ownBrokers = true
	}
	var old *Broker
	if o, ok := t.old.Broker(b.NodeID); ok {
		old = &o
	}
	t.img.brokers[b.NodeID] = b
	for i := range t.delta.Brokers {
		if t.delta.Brokers[i].NodeID == b.NodeID {
			t.delta.Brokers[i].New = b
			return
		}
	}
	t.delta.Brokers = append(t.delta.Brokers, BrokerChange{NodeID: b.NodeID, Old: old, New: b})
}

// topicForWrite returns the new image's copy of a topic, copying it (and
// its partition slice) on first write.
func (t *txn) topicForWrite(id TopicID) *Topic {
	if !t.ownTopics {
		t.img.topics = cloneMap(t.img.topics)
		t.ownTopics = true
	}
	if t.ownTopic == nil {
		t.ownTopic = map[TopicID]bool{}
	}
	top := t.img.topics[id]
	if !t.ownTopic[id] {
		cp := *top
		cp.Partitions = slices.Clone(top.Partitions)
		top = &cp
		t.img.topics[id] = top
		t.ownTopic[id] = true
	}
	return top
}

func (t *txn) recordPartition(top *Topic, p int32, oldP, newP *Partition) {
	k := partKey{top.ID, p}
	if t.parts == nil {
		t.parts = map[partKey]int{}
	}
	if i, ok := t.parts[k]; ok {
		t.delta.Partitions[i].New = newP
		return
	}
	t.parts[k] = len(t.delta.Partitions)
	t.delta.Partitions = append(t.delta.Partitions, PartitionChange{Topic: top.Name, TopicID: top.ID, Partition: p, Old: oldP, New: newP})
}

func (t *txn) setPartition(id TopicID, p int32, np Partition) {
	top := t.topicForWrite(id)
	var oldP *Partition
	if op, ok := t.old.Partition(id, p); ok {
		oldP = &op
	}
	top.Partitions[p] = np
	t.recordPartition(top, p, oldP, &np)
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	maps.Copy(out, m)
	return out
}

func (t *txn) registerBroker(index uint64, c RegisterBroker) error {
	if c.NodeID < 0 {
		return fmt.Errorf("%w: node id %d", ErrInvalidBroker, c.NodeID)
	}
	if c.ClusterID == "" || c.Incarnation == [16]byte{} {
		return fmt.Errorf("%w: empty cluster id or incarnation", ErrInvalidBroker)
	}
	if t.img.clusterID != "" && t.img.clusterID != c.ClusterID {
		return fmt.Errorf("%w: broker %d has %q, cluster is %q", ErrClusterIDMismatch, c.NodeID, c.ClusterID, t.img.clusterID)
	}
	old, existed := t.img.brokers[c.NodeID]
	if existed && old.Incarnation != c.Incarnation && !old.Fenced {
		return fmt.Errorf("%w: broker %d", ErrDuplicateBroker, c.NodeID)
	}
	if index > math.MaxInt64 {
		return fmt.Errorf("%w: index %d overflows a broker epoch", ErrInvalidBroker, index)
	}
	t.img.clusterID = c.ClusterID
	t.setBroker(&Broker{NodeID: c.NodeID, Epoch: int64(index), Incarnation: c.Incarnation, Addresses: c.Addresses, Rack: c.Rack, Fenced: true})
	if existed && !old.Fenced {
		// The previous incarnation is gone: take away what it led.
		t.fenceSweep(c.NodeID)
	}
	return nil
}

func (t *txn) brokerAt(id int32, epoch int64) (*Broker, error) {
	b, ok := t.img.brokers[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	}
	if b.Epoch != epoch {
		return nil, fmt.Errorf("%w: broker %d epoch %d, registered %d", ErrStaleBrokerEpoch, id, epoch, b.Epoch)
	}
	return b, nil
}

func (t *txn) fenceBroker(c FenceBroker) error {
	b, err := t.brokerAt(c.NodeID, c.BrokerEpoch)
	if err != nil || b.Fenced {
		return err
	}
	nb := *b
	nb.Fenced = true
	t.setBroker(&nb)
	t.fenceSweep(c.NodeID)
	return nil
}

func (t *txn) unfenceBroker(c UnfenceBroker) error {
	b, err := t.brokerAt(c.NodeID, c.BrokerEpoch)
	if err != nil || !b.Fenced {
		return err
	}
	nb := *b
	nb.Fenced = false
	t.setBroker(&nb)
	for _, id := range t.img.sortedTopicIDs() {
		top := t.img.topics[id]
		for p, part := range top.Partitions {
			if part.Leader != NoLeader || !slices.Contains(part.ISR, c.NodeID) {
				continue
			}
			np := part
			np.Leader = t.elect(np)
			np.LeaderEpoch++
			np.PartitionEpoch++
			t.setPartition(id, int32(p), np)
		}
	}
	return nil
}

// fenceSweep removes a fenced broker from every ISR it is in (keeping a
// sole member, so the partition remembers who holds its data) and moves
// leadership away from it, visiting partitions in a fixed order.
func (t *txn) fenceSweep(node int32) {
	for _, id := range t.img.sortedTopicIDs() {
		top := t.img.topics[id]
		for p, part := range top.Partitions {
			if !slices.Contains(part.Replicas, node) {
				continue
			}
			np := part
			changed := false
			if len(np.ISR) > 1 && slices.Contains(np.ISR, node) {
				np.ISR = slices.DeleteFunc(slices.Clone(np.ISR), func(r int32) bool { return r == node })
				changed = true
			}
			if np.Leader == node {
				np.Leader = t.elect(np)
				np.LeaderEpoch++
				changed = true
			}
			if changed {
				np.PartitionEpoch++
				t.setPartition(id, int32(p), np)
			}
		}
	}
}

// elect picks the first replica, in assignment order, that is in the ISR
// and unfenced; NoLeader if none is.
func (t *txn) elect(p Partition) int32 {
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && t.img.usable(r) {
			return r
		}
	}
	return NoLeader
}

func validTopicName(name string) error {
	if name == "" || len(name) > MaxTopicNameLen || name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidTopicName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q", ErrInvalidTopicName, name)
		}
	}
	return nil
}

// validAssignments checks replica lists: each non-empty, of length rf (the
// first list's length when rf is 0), without duplicates, naming registered
// brokers.
func (t *txn) validAssignments(as [][]int32, rf int) error {
	for i, reps := range as {
		if rf == 0 {
			rf = len(reps)
		}
		if len(reps) == 0 || len(reps) != rf || len(reps) > MaxReplicationFactor {
			return fmt.Errorf("%w: partition %d has %d replicas, want %d (1..%d)", ErrInvalidAssignment, i, len(reps), rf, MaxReplicationFactor)
		}
		for j, r := range reps {
			if _, ok := t.img.brokers[r]; !ok {
				return fmt.Errorf("%w: partition %d: %w %d", ErrInvalidAssignment, i, ErrUnknownBroker, r)
			}
			if slices.Contains(reps[:j], r) {
				return fmt.Errorf("%w: partition %d: duplicate replica %d", ErrInvalidAssignment, i, r)
			}
		}
	}
	return nil
}

// newPartition is a fresh partition: every replica is in sync (all logs
// are empty) and the first unfenced replica leads.
func (t *txn) newPartition(reps []int32) Partition {
	p := Partition{Replicas: slices.Clone(reps), ISR: slices.Clone(reps)}
	p.Leader = t.elect(p)
	return p
}

func (t *txn) createTopic(c CreateTopic) error {
	if err := validTopicName(c.Name); err != nil {
		return err
	}
	if c.TopicID.IsZero() {
		return fmt.Errorf("%w: zero id", ErrInvalidTopicID)
	}
	if _, ok := t.img.names[c.Name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, c.Name)
	}
	if _, ok := t.img.topics[c.TopicID]; ok {
		return fmt.Errorf("%w: id %v", ErrTopicExists, c.TopicID)
	}
	if len(c.Partitions) == 0 || len(c.Partitions) > MaxPartitionsPerTopic {
		return fmt.Errorf("%w: %d partitions", ErrInvalidAssignment, len(c.Partitions))
	}
	if err := t.validAssignments(c.Partitions, 0); err != nil {
		return err
	}
	if len(c.Configs) > MaxConfigs {
		return fmt.Errorf("%w: %d configs", ErrInvalidConfig, len(c.Configs))
	}
	for k := range c.Configs {
		if k == "" || len(k) > MaxConfigKeyLen {
			return fmt.Errorf("%w: key %q", ErrInvalidConfig, k)
		}
	}
	top := &Topic{Name: c.Name, ID: c.TopicID, Partitions: make([]Partition, len(c.Partitions))}
	if len(c.Configs) > 0 {
		top.Configs = maps.Clone(c.Configs)
	}
	for i, reps := range c.Partitions {
		top.Partitions[i] = t.newPartition(reps)
	}
	t.img.topics = cloneMap(t.img.topics)
	t.img.names = cloneMap(t.img.names)
	t.ownTopics = true
	t.img.topics[c.TopicID] = top
	t.img.names[c.Name] = c.TopicID
	for i := range top.Partitions {
		t.recordPartition(top, int32(i), nil, &top.Partitions[i])
	}
	return nil
}

func (t *txn) deleteTopic(c DeleteTopic) error {
	top, ok := t.img.topics[c.TopicID]
	if !ok {
		return fmt.Errorf("%w: id %v", ErrUnknownTopic, c.TopicID)
	}
	t.img.topics = cloneMap(t.img.topics)
	t.img.names = cloneMap(t.img.names)
	delete(t.img.topics, c.TopicID)
	delete(t.img.names, top.Name)
	for i := range top.Partitions {
		t.recordPartition(top, int32(i), &top.Partitions[i], nil)
	}
	return nil
}

func (t *txn) createPartitions(c CreatePartitions) error {
	top, ok := t.img.topics[c.TopicID]
	if !ok {
		return fmt.Errorf("%w: id %v", ErrUnknownTopic, c.TopicID)
	}
	if len(c.Assignments) == 0 || len(top.Partitions)+len(c.Assignments) > MaxPartitionsPerTopic {
		return fmt.Errorf("%w: adding %d partitions to %d", ErrInvalidAssignment, len(c.Assignments), len(top.Partitions))
	}
	if err := t.validAssignments(c.Assignments, len(top.Partitions[0].Replicas)); err != nil {
		return err
	}
	wt := t.topicForWrite(c.TopicID)
	for _, reps := range c.Assignments {
		wt.Partitions = append(wt.Partitions, t.newPartition(reps))
		p := len(wt.Partitions) - 1
		np := wt.Partitions[p]
		t.recordPartition(wt, int32(p), nil, &np)
	}
	return nil
}

func (t *txn) changePartition(c ChangePartition) error {
	cur, ok := t.img.Partition(c.TopicID, c.Partition)
	if !ok {
		if _, ok := t.img.topics[c.TopicID]; !ok {
			return fmt.Errorf("%w: id %v", ErrUnknownTopic, c.TopicID)
		}
		return fmt.Errorf("%w: %v/%d", ErrUnknownPartition, c.TopicID, c.Partition)
	}
	if c.LeaderEpoch != cur.LeaderEpoch || c.PartitionEpoch != cur.PartitionEpoch {
		return fmt.Errorf("%w: %v/%d has epochs %d/%d, command expects %d/%d", ErrStaleEpoch,
			c.TopicID, c.Partition, cur.LeaderEpoch, cur.PartitionEpoch, c.LeaderEpoch, c.PartitionEpoch)
	}
	if len(c.ISR) == 0 || len(c.ISR) > len(cur.Replicas) {
		return fmt.Errorf("%w: %d members", ErrInvalidISR, len(c.ISR))
	}
	for i, r := range c.ISR {
		if !slices.Contains(cur.Replicas, r) || slices.Contains(c.ISR[:i], r) {
			return fmt.Errorf("%w: member %d", ErrInvalidISR, r)
		}
		if !slices.Contains(cur.ISR, r) && !t.img.usable(r) {
			return fmt.Errorf("%w: fenced broker %d cannot join", ErrInvalidISR, r)
		}
	}
	if c.Leader != NoLeader && (!slices.Contains(c.ISR, c.Leader) || !t.img.usable(c.Leader)) {
		return fmt.Errorf("%w: %d", ErrIneligibleLeader, c.Leader)
	}
	// Canonical ISR order: assignment order.
	isr := make([]int32, 0, len(c.ISR))
	for _, r := range cur.Replicas {
		if slices.Contains(c.ISR, r) {
			isr = append(isr, r)
		}
	}
	if c.Leader == cur.Leader && slices.Equal(isr, cur.ISR) {
		return nil
	}
	np := cur
	np.ISR = isr
	if c.Leader != cur.Leader {
		np.Leader = c.Leader
		np.LeaderEpoch++
	}
	np.PartitionEpoch++
	t.setPartition(c.TopicID, c.Partition, np)
	return nil
}

func (t *txn) allocateProducerIDs(c AllocateProducerIDs) error {
	if _, err := t.brokerAt(c.NodeID, c.BrokerEpoch); err != nil {
		return err
	}
	first := t.img.nextProducerID
	if first > math.MaxInt64-ProducerIDBlockSize {
		return ErrProducerIDExhausted
	}
	t.img.nextProducerID = first + ProducerIDBlockSize
	t.delta.ProducerIDs = &ProducerIDBlock{NodeID: c.NodeID, BrokerEpoch: c.BrokerEpoch, FirstID: first, Count: ProducerIDBlockSize}
	return nil
}
