package meta

import (
	"fmt"
	"slices"
)

// alterPartition applies a leader's batch of ISR changes. The proposer
// check covers the whole command: an unknown, stale or fenced proposer
// fails it. Each item is then judged on its own, and a refused item is
// recorded in delta.Rejected instead of failing the others. Items for
// distinct partitions do not interact; a partition listed again is refused
// (ErrDuplicatePartition), so each changed partition's epoch moves by one.
func (t *txn) alterPartition(c AlterPartition) error {
	b, err := t.brokerAt(c.ProposerID, c.ProposerEpoch)
	if err != nil {
		return err
	}
	if b.Fenced {
		return fmt.Errorf("%w: proposer %d epoch %d", ErrFencedBroker, c.ProposerID, c.ProposerEpoch)
	}
	seen := make(map[partKey]bool, len(c.Partitions))
	for _, it := range c.Partitions {
		k := partKey{it.TopicID, it.Partition}
		var err error
		if seen[k] {
			err = fmt.Errorf("%w: %v/%d", ErrDuplicatePartition, it.TopicID, it.Partition)
		} else {
			seen[k] = true
			err = t.alterItem(c.ProposerID, it)
		}
		if err != nil {
			t.delta.Rejected = append(t.delta.Rejected, PartitionRejection{TopicID: it.TopicID, Partition: it.Partition, Err: err})
		}
	}
	return nil
}

// alterItem sets one partition's ISR as its leader asks, or says why not.
// The leader and LeaderEpoch never change; an accepted change of the ISR
// bumps PartitionEpoch.
func (t *txn) alterItem(leader int32, it AlterPartitionItem) error {
	cur, ok := t.img.Partition(it.TopicID, it.Partition)
	if !ok {
		if _, ok := t.img.topics[it.TopicID]; !ok {
			return fmt.Errorf("%w: id %v", ErrUnknownTopic, it.TopicID)
		}
		return fmt.Errorf("%w: %v/%d", ErrUnknownPartition, it.TopicID, it.Partition)
	}
	if it.LeaderEpoch != cur.LeaderEpoch || it.PartitionEpoch != cur.PartitionEpoch {
		return fmt.Errorf("%w: %v/%d has epochs %d/%d, command expects %d/%d", ErrStaleEpoch,
			it.TopicID, it.Partition, cur.LeaderEpoch, cur.PartitionEpoch, it.LeaderEpoch, it.PartitionEpoch)
	}
	if cur.Leader != leader {
		return fmt.Errorf("%w: %v/%d is led by %d, not %d", ErrNotPartitionLeader, it.TopicID, it.Partition, cur.Leader, leader)
	}
	// Bounded by the replicas first, so the duplicate scan below stays small
	// whatever the command carries.
	if len(it.ISR) == 0 || len(it.ISR) > len(cur.Replicas) {
		return fmt.Errorf("%w: %v/%d: %d members, %d replicas", ErrInvalidISR, it.TopicID, it.Partition, len(it.ISR), len(cur.Replicas))
	}
	hasLeader := false
	for i, m := range it.ISR {
		if !slices.Contains(cur.Replicas, m.ID) {
			return fmt.Errorf("%w: %v/%d: member %d is not a replica", ErrInvalidISR, it.TopicID, it.Partition, m.ID)
		}
		if slices.ContainsFunc(it.ISR[:i], func(o ISRMember) bool { return o.ID == m.ID }) {
			return fmt.Errorf("%w: %v/%d: member %d listed twice", ErrInvalidISR, it.TopicID, it.Partition, m.ID)
		}
		hasLeader = hasLeader || m.ID == leader
	}
	if !hasLeader {
		return fmt.Errorf("%w: %v/%d: leader %d left out", ErrInvalidISR, it.TopicID, it.Partition, leader)
	}
	for _, m := range it.ISR {
		if slices.Contains(cur.ISR, m.ID) {
			continue // staying: nothing to check
		}
		b, ok := t.img.brokers[m.ID]
		switch {
		case !ok:
			return fmt.Errorf("%w: %v/%d: broker %d is not registered", ErrIneligibleReplica, it.TopicID, it.Partition, m.ID)
		case b.Fenced:
			return fmt.Errorf("%w: %v/%d: broker %d is fenced", ErrIneligibleReplica, it.TopicID, it.Partition, m.ID)
		case m.BrokerEpoch != NoBrokerEpoch && m.BrokerEpoch != b.Epoch:
			return fmt.Errorf("%w: %v/%d: broker %d has epoch %d, the leader saw %d", ErrIneligibleReplica,
				it.TopicID, it.Partition, m.ID, b.Epoch, m.BrokerEpoch)
		}
	}
	// Canonical ISR order: assignment order, as changePartition stores it.
	isr := make([]int32, 0, len(it.ISR))
	for _, r := range cur.Replicas {
		if slices.ContainsFunc(it.ISR, func(m ISRMember) bool { return m.ID == r }) {
			isr = append(isr, r)
		}
	}
	if slices.Equal(isr, cur.ISR) {
		return nil
	}
	np := cur
	np.ISR = isr
	np.PartitionEpoch++
	t.setPartition(it.TopicID, it.Partition, np)
	return nil
}
