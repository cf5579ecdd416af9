package meta

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
)

// TopicID is a topic's UUID, chosen by the proposer and carried in the
// command so that applying it needs no randomness.
type TopicID [16]byte

// NewTopicID draws a random (version 4) UUID from r (nil: crypto/rand), as
// a proposer does before proposing CreateTopic.
func NewTopicID(r io.Reader) (TopicID, error) {
	if r == nil {
		r = rand.Reader
	}
	var id TopicID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return TopicID{}, fmt.Errorf("meta: topic id: %w", err)
	}
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id, nil
}

// IsZero reports whether id is the all-zero UUID, which no topic may use.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String formats id as a canonical UUID (8-4-4-4-12 hex digits).
func (id TopicID) String() string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (id TopicID) less(o TopicID) bool { return string(id[:]) < string(o[:]) }

// Addresses are a broker's advertised endpoints, host:port each.
type Addresses struct {
	Client      string // Kafka clients over TLS
	ClientPlain string // Kafka clients in plain text; may be empty
	Internal    string // replication and raft traffic
	Gossip      string // memberlist
	HTTP        string // metrics and health
}

// CommandType identifies a command in its encoding. Values are part of the
// on-disk format: never renumber.
type CommandType uint8

const (
	TypeRegisterBroker      CommandType = 1
	TypeFenceBroker         CommandType = 2
	TypeUnfenceBroker       CommandType = 3
	TypeCreateTopic         CommandType = 4
	TypeDeleteTopic         CommandType = 5
	TypeCreatePartitions    CommandType = 6
	TypeChangePartition     CommandType = 7
	TypeAllocateProducerIDs CommandType = 8
	TypeAlterPartition      CommandType = 9
)

func (t CommandType) String() string {
	switch t {
	case TypeRegisterBroker:
		return "RegisterBroker"
	case TypeFenceBroker:
		return "FenceBroker"
	case TypeUnfenceBroker:
		return "UnfenceBroker"
	case TypeCreateTopic:
		return "CreateTopic"
	case TypeDeleteTopic:
		return "DeleteTopic"
	case TypeCreatePartitions:
		return "CreatePartitions"
	case TypeChangePartition:
		return "ChangePartition"
	case TypeAllocateProducerIDs:
		return "AllocateProducerIDs"
	case TypeAlterPartition:
		return "AlterPartition"
	}
	return fmt.Sprintf("CommandType(%d)", uint8(t))
}

// Command is one metadata change proposed through raft. The set of
// implementations is closed: the types in this file.
type Command interface {
	Type() CommandType
	encode(w *writer)
}

// RegisterBroker registers a broker, or re-registers it after a restart.
// The new registration's BrokerEpoch is the raft index of this command.
// The broker starts fenced; UnfenceBroker admits it once it has caught up.
type RegisterBroker struct {
	NodeID    int32
	ClusterID string // must match the cluster's; the first registration sets it
	// Incarnation identifies the broker's data directory. A different
	// incarnation may only replace a fenced registration, so a wiped or
	// impostor node cannot silently take over a live broker's identity.
	Incarnation [16]byte
	Addresses   Addresses
	Rack        string // empty: no rack
}

// FenceBroker fences the registration with this epoch: the broker leaves
// every ISR it is in (unless it is the last member) and loses leadership.
type FenceBroker struct {
	NodeID      int32
	BrokerEpoch int64
}

// UnfenceBroker admits the registration with this epoch: it may lead again,
// and partitions left without a leader whose ISR holds it elect it.
type UnfenceBroker struct {
	NodeID      int32
	BrokerEpoch int64
}

// CreateTopic creates a topic with explicit replica assignments (see Place).
type CreateTopic struct {
	Name       string
	TopicID    TopicID
	Partitions [][]int32 // replicas per partition, preferred leader first
	Configs    map[string]string
}

// DeleteTopic deletes a topic and all its partitions.
type DeleteTopic struct {
	TopicID TopicID
}

// CreatePartitions appends partitions to a topic.
type CreatePartitions struct {
	TopicID     TopicID
	Assignments [][]int32 // replicas per new partition
}

// ChangePartition sets a partition's leader and ISR. It is fenced: it
// applies only if LeaderEpoch and PartitionEpoch equal the image's, so a
// stale proposer (an old leader shrinking the ISR) is rejected.
type ChangePartition struct {
	TopicID        TopicID
	Partition      int32
	Leader         int32 // -1: no leader
	ISR            []int32
	LeaderEpoch    int32 // expected current leader epoch
	PartitionEpoch int32 // expected current partition epoch
}

// AllocateProducerIDs hands the broker the next block of ProducerIDBlockSize
// producer ids.
type AllocateProducerIDs struct {
	NodeID      int32
	BrokerEpoch int64
}

// AlterPartition is a partition leader's batch of ISR changes (Kafka's
// KIP-497 AlterPartition, with KIP-903 broker epochs). The proposer must be
// registered with ProposerEpoch and unfenced, or the whole command is
// rejected; each item is then accepted or rejected on its own (rejections
// are listed in Delta.Rejected). It never changes a leader.
type AlterPartition struct {
	ProposerID    int32 // the leader proposing
	ProposerEpoch int64 // its broker epoch
	Partitions    []AlterPartitionItem
}

// AlterPartitionItem is the ISR one partition's leader wants. It is fenced
// like ChangePartition: it applies only if LeaderEpoch and PartitionEpoch
// equal the image's.
type AlterPartitionItem struct {
	TopicID        TopicID
	Partition      int32
	LeaderEpoch    int32 // expected current leader epoch
	PartitionEpoch int32 // expected current partition epoch
	ISR            []ISRMember
}

// ISRMember is one member of a proposed ISR with the broker epoch the leader
// saw it fetch with (KIP-903). A member being added must still have that
// epoch, so a replica that restarted (and may have lost its log) since the
// leader counted it in sync is refused.
type ISRMember struct {
	ID          int32
	BrokerEpoch int64 // NoBrokerEpoch: not checked
}

// NoBrokerEpoch is an ISRMember.BrokerEpoch that asks for no epoch check.
const NoBrokerEpoch int64 = -1

func (RegisterBroker) Type() CommandType      { return TypeRegisterBroker }
func (FenceBroker) Type() CommandType         { return TypeFenceBroker }
func (UnfenceBroker) Type() CommandType       { return TypeUnfenceBroker }
func (CreateTopic) Type() CommandType         { return TypeCreateTopic }
func (DeleteTopic) Type() CommandType         { return TypeDeleteTopic }
func (CreatePartitions) Type() CommandType    { return TypeCreatePartitions }
func (ChangePartition) Type() CommandType     { return TypeChangePartition }
func (AllocateProducerIDs) Type() CommandType { return TypeAllocateProducerIDs }
func (AlterPartition) Type() CommandType      { return TypeAlterPartition }

// CommandVersion is the encoding version written by EncodeCommand.
const CommandVersion = 1

// EncodeCommand encodes c as: version u8 | type u8 | fields. The encoding is
// deterministic (maps are written in key order).
func EncodeCommand(c Command) []byte {
	w := &writer{b: make([]byte, 0, 64)}
	w.u8(CommandVersion)
	w.u8(uint8(c.Type()))
	c.encode(w)
	return w.b
}

func (c RegisterBroker) encode(w *writer) {
	w.i32(c.NodeID)
	w.str(c.ClusterID)
	w.b = append(w.b, c.Incarnation[:]...)
	writeAddresses(w, c.Addresses)
	w.str(c.Rack)
}

func writeAddresses(w *writer, a Addresses) {
	w.str(a.Client)
	w.str(a.ClientPlain)
	w.str(a.Internal)
	w.str(a.Gossip)
	w.str(a.HTTP)
}

func (c FenceBroker) encode(w *writer) {
	w.i32(c.NodeID)
	w.i64(c.BrokerEpoch)
}

func (c UnfenceBroker) encode(w *writer) {
	w.i32(c.NodeID)
	w.i64(c.BrokerEpoch)
}

func (c CreateTopic) encode(w *writer) {
	w.str(c.Name)
	w.id(c.TopicID)
	writeAssignments(w, c.Partitions)
	writeConfigs(w, c.Configs)
}

func writeAssignments(w *writer, a [][]int32) {
	w.u32(uint32(len(a)))
	for _, r := range a {
		w.i32s(r)
	}
}

func writeConfigs(w *writer, m map[string]string) {
	w.u32(uint32(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.str(k)
		w.str(m[k])
	}
}

func (c DeleteTopic) encode(w *writer) { w.id(c.TopicID) }

func (c CreatePartitions) encode(w *writer) {
	w.id(c.TopicID)
	writeAssignments(w, c.Assignments)
}

func (c ChangePartition) encode(w *writer) {
	w.id(c.TopicID)
	w.i32(c.Partition)
	w.i32(c.Leader)
	w.i32s(c.ISR)
	w.i32(c.LeaderEpoch)
	w.i32(c.PartitionEpoch)
}

func (c AllocateProducerIDs) encode(w *writer) {
	w.i32(c.NodeID)
	w.i64(c.BrokerEpoch)
}

func (c AlterPartition) encode(w *writer) {
	w.i32(c.ProposerID)
	w.i64(c.ProposerEpoch)
	w.u32(uint32(len(c.Partitions)))
	for _, it := range c.Partitions {
		w.id(it.TopicID)
		w.i32(it.Partition)
		w.i32(it.LeaderEpoch)
		w.i32(it.PartitionEpoch)
		w.u32(uint32(len(it.ISR)))
		for _, m := range it.ISR {
			w.i32(m.ID)
			w.i64(m.BrokerEpoch)
		}
	}
}

// DecodeCommand decodes an EncodeCommand encoding. Errors wrap ErrMalformed
// or ErrUnknownCommand.
func DecodeCommand(b []byte) (Command, error) {
	r := &reader{b: b}
	ver := r.u8("version")
	typ := CommandType(r.u8("type"))
	if r.err != nil {
		return nil, r.err
	}
	if ver != CommandVersion {
		return nil, fmt.Errorf("%w: command version %d", ErrUnknownCommand, ver)
	}
	var c Command
	switch typ {
	case TypeRegisterBroker:
		v := RegisterBroker{NodeID: r.i32("node id"), ClusterID: r.str("cluster id")}
		copy(v.Incarnation[:], r.take(16, "incarnation"))
		v.Addresses = readAddresses(r)
		v.Rack = r.str("rack")
		c = v
	case TypeFenceBroker:
		c = FenceBroker{NodeID: r.i32("node id"), BrokerEpoch: r.i64("broker epoch")}
	case TypeUnfenceBroker:
		c = UnfenceBroker{NodeID: r.i32("node id"), BrokerEpoch: r.i64("broker epoch")}
	case TypeCreateTopic:
		c = CreateTopic{Name: r.str("name"), TopicID: r.id("topic id"), Partitions: readAssignments(r), Configs: readConfigs(r)}
	case TypeDeleteTopic:
		c = DeleteTopic{TopicID: r.id("topic id")}
	case TypeCreatePartitions:
		c = CreatePartitions{TopicID: r.id("topic id"), Assignments: readAssignments(r)}
	case TypeChangePartition:
		c = ChangePartition{TopicID: r.id("topic id"), Partition: r.i32("partition"), Leader: r.i32("leader"),
			ISR: r.i32s("isr"), LeaderEpoch: r.i32("leader epoch"), PartitionEpoch: r.i32("partition epoch")}
	case TypeAllocateProducerIDs:
		c = AllocateProducerIDs{NodeID: r.i32("node id"), BrokerEpoch: r.i64("broker epoch")}
	case TypeAlterPartition:
		c = AlterPartition{ProposerID: r.i32("proposer id"), ProposerEpoch: r.i64("proposer epoch"), Partitions: readAlterItems(r)}
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnknownCommand, typ)
	}
	r.end(typ.String())
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

func readAddresses(r *reader) Addresses {
	return Addresses{
		Client: r.str("client address"), ClientPlain: r.str("plain address"), Internal: r.str("internal address"),
		Gossip: r.str("gossip address"), HTTP: r.str("http address"),
	}
}

func readAssignments(r *reader) [][]int32 {
	n := r.count(4, "assignments")
	if n == 0 {
		return nil
	}
	a := make([][]int32, n)
	for i := range a {
		a[i] = r.i32s("replicas")
	}
	return a
}

// Smallest encodings of an AlterPartitionItem (an empty ISR) and an
// ISRMember, for count's allocation bound.
const (
	minAlterItemBytes = 16 + 4 + 4 + 4 + 4
	isrMemberBytes    = 4 + 8
)

func readAlterItems(r *reader) []AlterPartitionItem {
	n := r.count(minAlterItemBytes, "alter partition items")
	if n == 0 {
		return nil
	}
	items := make([]AlterPartitionItem, n)
	for i := range items {
		it := &items[i]
		it.TopicID, it.Partition = r.id("topic id"), r.i32("partition")
		it.LeaderEpoch, it.PartitionEpoch = r.i32("leader epoch"), r.i32("partition epoch")
		if m := r.count(isrMemberBytes, "isr members"); m > 0 {
			it.ISR = make([]ISRMember, m)
			for j := range it.ISR {
				it.ISR[j] = ISRMember{ID: r.i32("isr member"), BrokerEpoch: r.i64("isr member epoch")}
			}
		}
		if r.err != nil {
			return nil
		}
	}
	return items
}

func readConfigs(r *reader) map[string]string {
	n := r.count(8, "configs")
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	prev := ""
	for i := range n {
		k, v := r.str("config key"), r.str("config value")
		if i > 0 && k <= prev {
			r.fail("configs: keys not sorted and unique")
			return nil
		}
		prev = k
		m[k] = v
	}
	return m
}
