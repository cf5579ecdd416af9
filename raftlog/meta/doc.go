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
//	    ISR member. Only the controller proposes it (its elections and
//	    controlled shutdown); brokers change ISRs with AlterPartition.
//	AllocateProducerIDs{NodeID, BrokerEpoch}
//	    Hands out the next ProducerIDBlockSize producer ids (Delta.ProducerIDs).
//	AlterPartition{ProposerID, ProposerEpoch, Partitions: [{TopicID, Partition,
//	        LeaderEpoch, PartitionEpoch, ISR: [{ID, BrokerEpoch}]}]}
//	    A partition leader's batch of ISR changes (Kafka's KIP-497, with
//	    KIP-903 broker epochs). Encoded as proposer i32 | proposer epoch i64 |
//	    items u32 × (topic id [16] | partition i32 | leader epoch i32 |
//	    partition epoch i32 | members u32 × (id i32 | broker epoch i64)).
//	    The proposer must be registered with ProposerEpoch (ErrUnknownBroker,
//	    ErrStaleBrokerEpoch) and unfenced (ErrFencedBroker), or the whole
//	    command is rejected. Otherwise Apply returns nil and judges each
//	    item on its own, in order; a refused item is listed in
//	    Delta.Rejected with its reason and the others still apply:
//	      - a partition already listed earlier in the command: ErrDuplicatePartition;
//	      - the topic and partition must exist (ErrUnknownTopic, ErrUnknownPartition);
//	      - both epochs must equal the image's (ErrStaleEpoch);
//	      - the proposer must be the partition's leader (ErrNotPartitionLeader);
//	      - the ISR must be non-empty, without duplicates, within the
//	        replicas and hold the leader (ErrInvalidISR);
//	      - a member not in the current ISR must be registered, unfenced and,
//	        unless its BrokerEpoch is NoBrokerEpoch (-1), registered with that
//	        epoch: one that restarted since the leader saw it is refused
//	        (ErrIneligibleReplica). Members staying are not checked.
//	    An accepted item sets the ISR (assignment order) and bumps only the
//	    PartitionEpoch; one restating the current ISR changes nothing. The
//	    leader never changes. Controlled shutdown (KIP-841) is the
//	    controller's knowledge, not the image's: package controller drops
//	    items adding a broker that is shutting down, or whose session ran
//	    out, before proposing.
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
// topics in TopicID byte order; Delta lists are sorted, except Rejected,
// which follows the command's items). A rejected
// command returns the input image, an empty Delta and an error wrapping one
// of the Err* rejections; every replica rejects it identically, so the
// proposer learns the outcome by applying too. AlterPartition is the one
// command rejected item by item: its refused items are in Delta.Rejected,
// and if nothing else happened the image is returned unchanged (same
// pointer, same Index) with a Delta holding only Index and Rejected:
// Delta.Changed is false, Delta.Empty is not, LocalChanges is empty. The image is copy-on-write:
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
