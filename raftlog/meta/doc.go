// Package meta is the metadata state machine: commands proposed through
// raft, the immutable Image they build, and the Delta each one produces.
//
// # Commands
//
// A command is one metadata change, encoded by EncodeCommand as
//
//	version u8 (=1) | type u8 | fields (big endian; strings and lists u32-length-prefixed)
//
// The encoding is deterministic (config maps are written in key order and
// must be sorted when decoded), so equal commands have equal bytes.
//
//	RegisterBroker{NodeID, ClusterID, Incarnation, Addresses, Rack}
//	    BrokerEpoch := raft index of the command. The broker is fenced until
//	    UnfenceBroker. A different Incarnation may only replace a fenced
//	    registration (ErrDuplicateBroker). Re-registering a live broker
//	    fences its previous epoch first (see FenceBroker).
//	FenceBroker / UnfenceBroker{NodeID, BrokerEpoch}
//	    Fenced only with the current epoch (ErrStaleBrokerEpoch). Fencing
//	    removes the broker from every ISR it is in, unless it is the last
//	    member, and elects a new leader where it led; unfencing elects it
//	    where a partition has no leader and it is in the ISR.
//	CreateTopic{Name, TopicID, Partitions, Configs}
//	    The proposer picks the TopicID (a UUID) and the assignment (Place).
//	    A new partition's ISR is all its replicas (every log is empty) and
//	    its leader the first unfenced replica.
//	DeleteTopic{TopicID}, CreatePartitions{TopicID, Assignments}
//	ChangePartition{TopicID, Partition, Leader, ISR, LeaderEpoch, PartitionEpoch}
//	    Fenced: applies only if both epochs equal the image's (ErrStaleEpoch).
//	    The ISR is a subset of the replicas (stored in assignment order);
//	    brokers joining it must be unfenced; the leader is -1 or an unfenced
//	    ISR member.
//	AllocateProducerIDs{NodeID, BrokerEpoch}
//	    Hands out the next ProducerIDBlockSize producer ids (Delta.ProducerIDs).
//
// # Epochs
//
// Every change of a partition's leader (including to or from -1) bumps its
// LeaderEpoch; every change of its leader or ISR bumps its PartitionEpoch.
// Fresh partitions start at 0/0. Broker epochs are raft indexes, so they
// only grow.
//
// # Image and Apply
//
// Apply(img, index, cmd) is pure and deterministic: no clock, no randomness,
// no output that depends on map iteration (multi-partition effects visit
// topics in TopicID byte order and Delta lists are sorted). A rejected
// command returns the input image, an empty Delta and an error wrapping one
// of the Err* rejections; every replica rejects it identically, so the
// proposer learns the outcome by applying too. The image is copy-on-write:
// Apply copies the maps and topics it touches and shares the rest, and
// never modifies its input, so an Image may be read from any goroutine
// while the raft loop applies the next command.
//
// Delta lists broker and partition changes with old and new state;
// Delta.LocalChanges(node) turns it into a node's actions: BecomeLeader,
// UpdateLeader (ISR change), BecomeFollower, DeleteReplica. The broker
// (package node) does not act on deltas: its reconciler compares its
// replicas with the whole newest image, which also covers a snapshot
// install; deltas serve the tests that state what each command changes.
//
// EncodeImage/DecodeImage are the raft snapshot format of the image
// (versioned, deterministic: equal images encode to equal bytes).
//
// # Placement
//
// Place spreads replicas and preferred leaders over unfenced brokers with a
// rack-alternating ring: leaders differ by at most one per broker, every
// partition spans min(rf, racks) racks, and without racks every broker holds
// the same number of replicas for a multiple of n partitions.
package meta
