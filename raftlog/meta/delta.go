package meta

import "slices"

// Delta describes what one applied command changed. It lets every node
// react to the change without diffing whole images.
type Delta struct {
	Index       uint64            // raft index of the command
	Brokers     []BrokerChange    // ordered by NodeID
	Partitions  []PartitionChange // ordered by TopicID bytes, then Partition
	ProducerIDs *ProducerIDBlock  // set by AllocateProducerIDs
	// Rejected lists the items of an AlterPartition that were not applied,
	// in the command's item order, while the rest of the command was. They
	// change nothing: a delta holding only rejections leaves the image as
	// it was (Changed is false, Empty is not).
	Rejected []PartitionRejection
}

// PartitionRejection is one AlterPartition item that Apply refused.
type PartitionRejection struct {
	TopicID   TopicID
	Partition int32
	Err       error // wraps one of the rejection sentinels
}

// BrokerChange is a registration's state before and after the command.
type BrokerChange struct {
	NodeID int32
	Old    *Broker // nil: first registration
	New    *Broker
}

// PartitionChange is a partition's state before and after the command.
type PartitionChange struct {
	Topic     string
	TopicID   TopicID
	Partition int32
	Old       *Partition // nil: created by this command
	New       *Partition // nil: deleted by this command
}

// ProducerIDBlock is a range of producer ids handed to one broker.
type ProducerIDBlock struct {
	NodeID      int32
	BrokerEpoch int64
	FirstID     int64
	Count       int64
}

// Changed reports whether the delta changes the image.
func (d Delta) Changed() bool {
	return len(d.Brokers) != 0 || len(d.Partitions) != 0 || d.ProducerIDs != nil
}

// Empty reports whether the delta has nothing to tell: it changes nothing
// and rejects no item.
func (d Delta) Empty() bool {
	return !d.Changed() && len(d.Rejected) == 0
}

// LocalChangeKind says how a node must react to a partition change.
type LocalChangeKind uint8

const (
	// BecomeLeader: the node leads the partition in a new leader epoch. It
	// records (epoch -> log end offset) before accepting writes.
	BecomeLeader LocalChangeKind = iota + 1
	// UpdateLeader: the node still leads in the same epoch; the ISR changed.
	UpdateLeader
	// BecomeFollower: the node follows a new leader (or no leader) in a new
	// leader epoch; it truncates by OffsetForLeaderEpoch and fetches.
	BecomeFollower
	// DeleteReplica: the node no longer hosts the partition (topic deleted
	// or replica reassigned away); it stops the replica and deletes its log.
	DeleteReplica
)

func (k LocalChangeKind) String() string {
	switch k {
	case BecomeLeader:
		return "become-leader"
	case UpdateLeader:
		return "update-leader"
	case BecomeFollower:
		return "become-follower"
	case DeleteReplica:
		return "delete-replica"
	}
	return "unknown"
}

// LocalChange is one partition change seen from one node's replica.
type LocalChange struct {
	Kind      LocalChangeKind
	Topic     string
	TopicID   TopicID
	Partition int32
	State     Partition // new state; zero for DeleteReplica
}

// LocalChanges returns the reactions the delta asks of node nodeID, in the
// delta's partition order.
func (d Delta) LocalChanges(nodeID int32) []LocalChange {
	var out []LocalChange
	for _, pc := range d.Partitions {
		wasReplica := pc.Old != nil && slices.Contains(pc.Old.Replicas, nodeID)
		isReplica := pc.New != nil && slices.Contains(pc.New.Replicas, nodeID)
		lc := LocalChange{Topic: pc.Topic, TopicID: pc.TopicID, Partition: pc.Partition}
		switch {
		case !isReplica && wasReplica:
			lc.Kind = DeleteReplica
		case !isReplica:
			continue
		default:
			lc.State = *pc.New
			newEpoch := !wasReplica || pc.Old.Leader != pc.New.Leader || pc.Old.LeaderEpoch != pc.New.LeaderEpoch
			switch {
			case pc.New.Leader == nodeID && newEpoch:
				lc.Kind = BecomeLeader
			case pc.New.Leader == nodeID:
				lc.Kind = UpdateLeader
			case newEpoch:
				lc.Kind = BecomeFollower
			default:
				continue // a follower does not care about ISR changes
			}
		}
		out = append(out, lc)
	}
	return out
}
