package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// Core errors.
var (
	// ErrUnknownBroker reports a node id with no registration in the image
	// (wire code BROKER_ID_NOT_REGISTERED).
	ErrUnknownBroker = errors.New("controller: broker not registered")
	// ErrStaleBrokerEpoch reports a request carrying a broker epoch other
	// than the current registration's: a zombie of an earlier run (wire
	// code STALE_BROKER_EPOCH).
	ErrStaleBrokerEpoch = errors.New("controller: stale broker epoch")
)

// Heartbeat is a broker's periodic liveness report.
type Heartbeat struct {
	NodeID      int32
	BrokerEpoch int64
	// WantFence: the broker is in controlled shutdown; the controller moves
	// leadership away from it and keeps it from being unfenced.
	WantFence bool
	// MetadataOffset is the highest metadata index the broker has applied.
	// A fenced broker is unfenced once it reaches its own registration.
	MetadataOffset uint64
}

// HeartbeatReply answers a Heartbeat. It describes the state once the
// commands returned with it are committed.
type HeartbeatReply struct {
	ErrorCode      int16 // 0, or STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED
	Fenced         bool  // the broker may not lead or join ISRs
	ShouldShutdown bool  // controlled shutdown: leadership has moved away
	// MetadataOffset is the index of the controller's image when it answered (after the commands
	// returned with the reply). A broker counts the acknowledgement toward its leadership lease
	// only once its own image has reached it, so a broker that was fenced and replaced while
	// frozen sees its replacement before it can act on an old leadership again.
	MetadataOffset uint64
	// Lease is how long from the heartbeat's send time the broker may act as
	// leader (once its image reached MetadataOffset): the controller fences
	// it no sooner than Lease after the heartbeat arrived.
	Lease time.Duration
}

// session is the controller's view of one broker registration's liveness.
type session struct {
	epoch    int64     // registration it belongs to; 0 until known
	expires  time.Time // fenced when now reaches it (and leaseEnd)
	leaseEnd time.Time // the end of the last lease granted: no fencing before it
	shutdown bool      // controlled shutdown in progress
	unfence  bool      // caught up and asked to be unfenced
	// offline are this registration's replicas whose logs failed: they may not lead or rejoin an
	// ISR until the broker registers again (a new session).
	offline map[PartitionRef]bool
}

// expired reports whether the session has run out: its expiry (which gossip's dead verdict may
// bring forward) and the last lease granted are both past.
func (s *session) expired(now time.Time) bool {
	return !now.Before(s.expires) && !now.Before(s.leaseEnd)
}

// Core holds the controller's decisions: when to fence, unfence, elect and
// rebalance. It is pure and deterministic (the time is an argument, the
// image an input, commands the output), performs no I/O, starts no
// goroutine and is not safe for concurrent use: its owner serialises calls.
// Commands it returns are proposals; nothing changes until they commit.
type Core struct {
	cfg           Config
	log           *slog.Logger
	sessions      map[int32]*session
	nextPreferred time.Time
}

// NewCore returns a core with no sessions; zero Config fields take their
// defaults (PreferredLeaderInterval zero stays off).
func NewCore(cfg Config) *Core {
	cfg = cfg.withDefaults()
	return &Core{cfg: cfg, log: cfg.Logger, sessions: map[int32]*session{}}
}

// session returns b's session, creating a fresh one (expiring one session
// timeout from now) for a registration not seen before.
func (c *Core) session(now time.Time, b meta.Broker) *session {
	s := c.sessions[b.NodeID]
	switch {
	case s == nil || (s.epoch != 0 && s.epoch != b.Epoch):
		ns := &session{epoch: b.Epoch, expires: now.Add(c.cfg.SessionTimeout)}
		if s != nil {
			ns.leaseEnd = s.leaseEnd // a process of the earlier registration may still hold it
		}
		s = ns
		c.sessions[b.NodeID] = s
	case s.epoch == 0: // created by MemberDead before the registration was known
		s.epoch = b.Epoch
	}
	return s
}

// BecameLeader gives every registered broker a fresh session (now +
// SessionTimeout) and forgets the previous term's state, so a new
// controller fences nobody before brokers had a chance to reach it. Leases
// granted by earlier controllers are assumed to run until now + Lease +
// LeaseGrace.
func (c *Core) BecameLeader(now time.Time, img *meta.Image) {
	c.sessions = map[int32]*session{}
	leaseEnd := now.Add(c.cfg.Lease + c.cfg.LeaseGrace) // leases the previous controller granted
	for _, b := range img.Brokers() {
		c.sessions[b.NodeID] = &session{epoch: b.Epoch, expires: now.Add(c.cfg.SessionTimeout), leaseEnd: leaseEnd}
	}
	c.nextPreferred = now.Add(c.cfg.PreferredLeaderInterval)
}

// MemberDead records gossip's verdict that a node is dead: its session
// ends now, or when the last lease granted to it ends if that is later, and
// the next Tick after that fences it. It changes nothing by itself, and
// a heartbeat of the same registration before the session has run out
// revives it.
func (c *Core) MemberDead(now time.Time, nodeID int32) {
	s := c.sessions[nodeID]
	if s == nil {
		s = &session{}
		c.sessions[nodeID] = s
	}
	if s.expires.IsZero() || now.Before(s.expires) {
		s.expires = now
	}
}

// Heartbeat handles a broker's heartbeat: a current registration's session
// is renewed and a lease granted, unless the session has already run out
// (then the answer says fenced, and Tick fences it); a stale epoch gets STALE_BROKER_EPOCH and renews nothing. A
// fenced broker that has caught up with its registration (and is not
// shutting down) is unfenced; one in controlled shutdown gets the
// commands moving leadership away and ShouldShutdown.
func (c *Core) Heartbeat(now time.Time, img *meta.Image, hb Heartbeat) (HeartbeatReply, []meta.Command) {
	b, ok := img.Broker(hb.NodeID)
	if !ok {
		return HeartbeatReply{ErrorCode: wire.CodeBrokerIDNotRegistered, Fenced: true}, nil
	}
	if hb.BrokerEpoch != b.Epoch {
		return HeartbeatReply{ErrorCode: wire.CodeStaleBrokerEpoch, Fenced: true}, nil
	}
	s := c.session(now, b)
	if !b.Fenced && s.expired(now) {
		// The session ran out, lease included: its fence is due at the next Tick or already
		// proposed. Renewing now would hand out a lease the fence is about to break; the broker
		// is told it is fenced and is unfenced once the fence is in its image.
		return HeartbeatReply{Fenced: true, MetadataOffset: img.Index()}, nil
	}
	s.expires = now.Add(c.cfg.SessionTimeout)
	if end := now.Add(c.cfg.Lease); end.After(s.leaseEnd) {
		s.leaseEnd = end
	}
	if hb.WantFence {
		s.shutdown, s.unfence = true, false
	}
	reply := HeartbeatReply{Fenced: b.Fenced, MetadataOffset: img.Index(), Lease: c.cfg.Lease}
	var cmds []meta.Command
	if b.Fenced && !s.shutdown && hb.MetadataOffset >= uint64(b.Epoch) {
		s.unfence = true
		cmds = append(cmds, meta.UnfenceBroker{NodeID: b.NodeID, BrokerEpoch: b.Epoch})
		reply.Fenced = false
	}
	if s.shutdown {
		cmds = append(cmds, c.moveAway(now, img, b.NodeID)...)
		reply.ShouldShutdown = true
	}
	return reply, cmds
}

// ControlledShutdown starts a broker's controlled shutdown and returns the
// commands that move leadership away from it and take it out of ISRs.
// Partitions where no other live ISR member can lead are left as they are
// (they go offline when the broker is fenced). Once these commands are
// committed, calling it again returns none.
func (c *Core) ControlledShutdown(now time.Time, img *meta.Image, nodeID int32, brokerEpoch int64) ([]meta.Command, error) {
	b, ok := img.Broker(nodeID)
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownBroker, nodeID)
	}
	if b.Epoch != brokerEpoch {
		return nil, fmt.Errorf("%w: broker %d epoch %d, registered %d", ErrStaleBrokerEpoch, nodeID, brokerEpoch, b.Epoch)
	}
	s := c.session(now, b)
	s.shutdown, s.unfence = true, false
	return c.moveAway(now, img, nodeID), nil
}

// ReplicasOffline handles a broker's report that some of its replicas' logs failed (a disk error).
// Those replicas leave their ISRs and lose leadership to another live ISR member, as in a
// controlled shutdown of those partitions alone; a partition whose ISR holds only the failed replica
// loses its leader and stays offline (the ISR keeps it, so the partition remembers who holds its
// data). They are not elected again, nor let back into an ISR, until the broker registers again.
// Once the returned commands are committed, calling it again returns none.
func (c *Core) ReplicasOffline(now time.Time, img *meta.Image, nodeID int32, brokerEpoch int64, parts []PartitionRef) ([]meta.Command, error) {
	b, ok := img.Broker(nodeID)
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownBroker, nodeID)
	}
	if b.Epoch != brokerEpoch {
		return nil, fmt.Errorf("%w: broker %d epoch %d, registered %d", ErrStaleBrokerEpoch, nodeID, brokerEpoch, b.Epoch)
	}
	s := c.session(now, b)
	if s.offline == nil {
		s.offline = map[PartitionRef]bool{}
	}
	var cmds []meta.Command
	for _, ref := range parts {
		s.offline[ref] = true
		part, ok := img.Partition(ref.TopicID, ref.Partition)
		if !ok || !slices.Contains(part.ISR, nodeID) {
			continue
		}
		isr := slices.DeleteFunc(slices.Clone(part.ISR), func(r int32) bool { return r == nodeID })
		leader := part.Leader
		if leader == nodeID {
			leader = c.firstEligible(now, img, ref, part.Replicas, isr)
		}
		if len(isr) == 0 {
			if part.Leader != nodeID {
				continue
			}
			isr = part.ISR // the last member stays: the partition goes offline
		}
		cmds = append(cmds, changePartition(ref.TopicID, ref.Partition, part, leader, isr))
	}
	return cmds, nil
}

// offline reports whether broker id's replica of ref failed in its current registration.
func (c *Core) offline(id int32, ref PartitionRef) bool {
	s := c.sessions[id]
	return s != nil && s.offline[ref]
}

// firstEligible returns the first replica of a partition, in assignment order, that is in set, live
// and not reported offline there; NoLeader if none is.
func (c *Core) firstEligible(now time.Time, img *meta.Image, ref PartitionRef, replicas, set []int32) int32 {
	for _, r := range replicas {
		if slices.Contains(set, r) && c.live(now, img, r) && !c.offline(r, ref) {
			return r
		}
	}
	return meta.NoLeader
}

// live reports whether broker id may be chosen to lead: registered,
// unfenced, its session running and not shutting down. Gossip's dead verdict
// ends the session for this purpose at once, though fencing waits for the
// broker's lease to end.
func (c *Core) live(now time.Time, img *meta.Image, id int32) bool {
	b, ok := img.Broker(id)
	if !ok || b.Fenced {
		return false
	}
	s := c.session(now, b)
	return !s.shutdown && now.Before(s.expires)
}

// FilterAlterPartition applies the controller's half of KIP-841 to a
// leader's AlterPartition: items that would add to an ISR a broker in
// controlled shutdown, or one whose session has run out (its expiry, which
// gossip's dead verdict brings forward, is past), are taken out. It returns
// the command to propose and the items taken out, each with an error
// wrapping meta.ErrIneligibleReplica, in the command's order. A member
// counts as added unless img's partition, at the item's epochs, already
// lists it, so an item judged against an image that has moved on errs
// toward refusal. Unregistered and fenced members are left to meta.Apply,
// which refuses them too.
func (c *Core) FilterAlterPartition(now time.Time, img *meta.Image, cmd meta.AlterPartition) (meta.AlterPartition, []meta.PartitionRejection) {
	out := cmd
	out.Partitions = nil
	var dropped []meta.PartitionRejection
	for _, it := range cmd.Partitions {
		if err := c.refuseJoin(now, img, it); err != nil {
			dropped = append(dropped, meta.PartitionRejection{TopicID: it.TopicID, Partition: it.Partition, Err: err})
			continue
		}
		out.Partitions = append(out.Partitions, it)
	}
	return out, dropped
}

// refuseJoin returns why item it may not be proposed, or nil.
func (c *Core) refuseJoin(now time.Time, img *meta.Image, it meta.AlterPartitionItem) error {
	cur, ok := img.Partition(it.TopicID, it.Partition)
	current := ok && cur.LeaderEpoch == it.LeaderEpoch && cur.PartitionEpoch == it.PartitionEpoch
	for _, m := range it.ISR {
		if current && slices.Contains(cur.ISR, m.ID) {
			continue
		}
		b, ok := img.Broker(m.ID)
		if !ok || b.Fenced {
			continue
		}
		s := c.session(now, b)
		switch {
		case s.shutdown:
			return fmt.Errorf("%w: %v/%d: controller: broker %d is in controlled shutdown", meta.ErrIneligibleReplica, it.TopicID, it.Partition, m.ID)
		case !now.Before(s.expires):
			return fmt.Errorf("%w: %v/%d: controller: broker %d has no live session", meta.ErrIneligibleReplica, it.TopicID, it.Partition, m.ID)
		case s.offline[PartitionRef{it.TopicID, it.Partition}]:
			return fmt.Errorf("%w: %v/%d: controller: broker %d reported this replica offline", meta.ErrIneligibleReplica, it.TopicID, it.Partition, m.ID)
		}
	}
	return nil
}

// moveAway returns ChangePartitions moving leadership off node and taking
// it out of ISRs, for every partition where another live ISR member can
// take over (or where it only follows and is not the last ISR member).
func (c *Core) moveAway(now time.Time, img *meta.Image, node int32) []meta.Command {
	var cmds []meta.Command
	for _, t := range img.Topics() {
		for p, part := range t.Partitions {
			if !slices.Contains(part.ISR, node) || len(part.ISR) == 1 {
				continue
			}
			isr := slices.DeleteFunc(slices.Clone(part.ISR), func(r int32) bool { return r == node })
			leader := part.Leader
			if leader == node {
				leader = c.firstEligible(now, img, PartitionRef{t.ID, int32(p)}, part.Replicas, isr)
				if leader == meta.NoLeader {
					continue // nobody to hand over to: keep it until fenced
				}
			}
			cmds = append(cmds, changePartition(t.ID, int32(p), part, leader, isr))
		}
	}
	return cmds
}

func changePartition(id meta.TopicID, p int32, cur meta.Partition, leader int32, isr []int32) meta.ChangePartition {
	return meta.ChangePartition{TopicID: id, Partition: p, Leader: leader, ISR: isr,
		LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch}
}

func (c *Core) unclean(t *meta.Topic) bool {
	if c.cfg.UncleanElection != nil {
		return c.cfg.UncleanElection(t.ID)
	}
	return t.Configs[UncleanConfig] == "true"
}

// Tick returns the commands the controller should propose at time now,
// computed against img as if each earlier command of the batch had
// committed (each one is fenced by epochs, so a batch that is only partly
// committed stays safe and the next Tick repairs it):
//
//   - FenceBroker for every unfenced broker whose session expired;
//   - UnfenceBroker for fenced brokers that heartbeat and asked for it;
//   - the leadership moves of brokers in controlled shutdown;
//   - a leader for each leaderless partition: its first live ISR member,
//     or, if none and the topic allows unclean election, its first live
//     replica in assignment order (log ends are unknown here) with the ISR
//     reset to that replica alone; otherwise the partition stays offline;
//   - every PreferredLeaderInterval, leadership back to each partition's
//     first replica where it is live and in the ISR.
func (c *Core) Tick(now time.Time, img *meta.Image) []meta.Command {
	var cmds []meta.Command
	work := img
	emit := func(cmd meta.Command) {
		if cp, ok := cmd.(meta.ChangePartition); ok {
			// A partition change must expect the committed epochs, never ones an earlier command of
			// this batch predicts: that command may turn out a no-op while another change (a
			// leader's AlterPartition in flight) produces the same epochs from a different state, and
			// the fenced command would then apply to a state it was not computed from. The next Tick
			// redoes it from the committed image. (Found by the replica simulator, seed 1203187.)
			if cur, ok := img.Partition(cp.TopicID, cp.Partition); !ok ||
				cur.LeaderEpoch != cp.LeaderEpoch || cur.PartitionEpoch != cp.PartitionEpoch {
				return
			}
		}
		cmds = append(cmds, cmd)
		if next, _, err := meta.Apply(work, work.Index()+1, cmd); err == nil {
			work = next
		}
	}
	for _, b := range img.Brokers() {
		s := c.session(now, b)
		expired := s.expired(now)
		switch {
		case !b.Fenced && expired:
			c.log.Info("fencing broker: session expired", "node", b.NodeID, "epoch", b.Epoch)
			s.unfence = false
			emit(meta.FenceBroker{NodeID: b.NodeID, BrokerEpoch: b.Epoch})
		case b.Fenced && s.unfence && !s.shutdown && !expired:
			emit(meta.UnfenceBroker{NodeID: b.NodeID, BrokerEpoch: b.Epoch})
		case !b.Fenced && s.shutdown:
			for _, cmd := range c.moveAway(now, work, b.NodeID) {
				emit(cmd)
			}
		}
	}
	for _, t := range work.Topics() {
		for p, part := range t.Partitions {
			if part.Leader != meta.NoLeader {
				continue
			}
			ref := PartitionRef{t.ID, int32(p)}
			if l := c.firstEligible(now, work, ref, part.Replicas, part.ISR); l != meta.NoLeader {
				emit(changePartition(t.ID, int32(p), part, l, part.ISR))
				continue
			}
			if !c.unclean(t) {
				c.log.Debug("partition offline: no live ISR member", "topic", t.Name, "partition", p, "isr", part.ISR)
				continue
			}
			if l := c.firstEligible(now, work, ref, part.Replicas, part.Replicas); l != meta.NoLeader {
				c.log.Warn("unclean leader election", "topic", t.Name, "partition", p, "leader", l, "old_isr", part.ISR)
				emit(changePartition(t.ID, int32(p), part, l, []int32{l}))
			}
		}
	}
	if c.cfg.PreferredLeaderInterval > 0 && !now.Before(c.nextPreferred) {
		c.nextPreferred = now.Add(c.cfg.PreferredLeaderInterval)
		for _, t := range work.Topics() {
			for p, part := range t.Partitions {
				if len(part.Replicas) == 0 {
					continue
				}
				pref := part.Replicas[0]
				if part.Leader == pref || !slices.Contains(part.ISR, pref) || !c.live(now, work, pref) ||
					c.offline(pref, PartitionRef{t.ID, int32(p)}) {
					continue
				}
				c.log.Info("moving leadership to the preferred replica", "topic", t.Name, "partition", p, "from", part.Leader, "to", pref)
				emit(changePartition(t.ID, int32(p), part, pref, part.ISR))
			}
		}
	}
	return cmds
}
