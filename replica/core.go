package replica

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors the core returns; the broker maps them to Kafka codes.
var (
	// ErrNotLeader: this replica does not lead the partition (NOT_LEADER_OR_FOLLOWER).
	ErrNotLeader = errors.New("replica: not the leader")
	// ErrNotEnoughReplicas: the ISR is smaller than min.insync.replicas before an acks=all append.
	ErrNotEnoughReplicas = errors.New("replica: in-sync replicas below min.insync.replicas")
	// ErrNotEnoughReplicasAfterAppend: the HW passed an acks=all write while the ISR was smaller than
	// min.insync.replicas.
	ErrNotEnoughReplicasAfterAppend = errors.New("replica: in-sync replicas below min.insync.replicas after the append")
	// ErrNotReplica: a fetch from a broker that is not a replica of the partition.
	ErrNotReplica = errors.New("replica: fetch from a broker that is not a replica")
	// ErrOffsetOutOfRange: a follower fetch below the log start or above the log end.
	ErrOffsetOutOfRange = errors.New("replica: fetch offset out of range")
)

// Config tunes the rules.
type Config struct {
	// LagTime is replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR.
	// Zero means DefaultLagTime.
	LagTime time.Duration
}

// DefaultLagTime is the default replica.lag.time.max.ms. Kafka uses 30 s; Sluice's failover goal
// (a dead follower must not stall acks=all for long) wants it short, and followers fetch with a
// 500 ms long-poll, so a live follower is caught up several times within it.
const DefaultLagTime = 4 * time.Second

// Metadata is a partition's replication state from the metadata image.
type Metadata struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
}

// Role is what a replica currently does.
type Role uint8

const (
	RoleNone     Role = iota // not assigned a role yet (or fenced and not following)
	RoleLeader               // leads in Metadata.LeaderEpoch
	RoleFollower             // fetches from Metadata.Leader
)

func (r Role) String() string {
	switch r {
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	}
	return "none"
}

// EpochEnd is a leader epoch and the offset its data ends at (the answer of an epoch-cache
// lookup, as OffsetForLeaderEpoch gives it). Epoch -1 means unknown.
type EpochEnd struct {
	Epoch     int32
	EndOffset int64
}

// Completion is the outcome of an acks=all wait.
type Completion struct {
	ID  uint64
	Err error // nil, ErrNotEnoughReplicasAfterAppend or ErrNotLeader
}

// ISRChange is an AlterPartition the leader asks its owner to propose.
type ISRChange struct {
	LeaderEpoch    int32 // expected epochs (fencing)
	PartitionEpoch int32
	ISR            []int32
	// BrokerEpochs holds, for members being added, the broker epoch the follower fetched with
	// (KIP-903); members already in the ISR are not listed.
	BrokerEpochs map[int32]int64
}

// Ready is what a call asks the owner to do.
type Ready struct {
	// HighWatermark is the new HW when HWChanged.
	HighWatermark int64
	HWChanged     bool
	// Completed are acks=all waits that finished.
	Completed []Completion
	// Propose is an ISR change to send to the controller (nil: none).
	Propose *ISRChange
}

func (r *Ready) merge(o Ready) {
	if o.HWChanged {
		r.HighWatermark, r.HWChanged = o.HighWatermark, true
	}
	r.Completed = append(r.Completed, o.Completed...)
	if o.Propose != nil {
		r.Propose = o.Propose
	}
}

// follower is the leader's view of one follower.
type follower struct {
	leo                  int64 // -1: unknown since this replica became leader
	brokerEpoch          int64 // from its last fetch; -1 unknown
	lastCaughtUp         time.Time
	lastFetch            time.Time
	lastFetchLeaderLEO   int64
	everFetchedThisEpoch bool
}

type wait struct {
	id     uint64
	end    int64 // HW must reach it
	minISR int
}

// Core is one partition replica's replication state. See the package doc.
type Core struct {
	self int32
	cfg  Config

	role     Role
	md       Metadata
	leo      int64
	logStart int64
	hw       int64

	// Leader state.
	epochStart int64 // start offset of the current leader epoch
	followers  map[int32]*follower
	pending    *ISRChange // in flight; counts toward the maximal ISR
	waits      []wait     // sorted by end

	// breaks switches rules off; only the simulator's tests set it, to show that it finds the
	// violations each rule prevents.
	breaks breaks
}

// breaks are deliberate rule violations for the simulator's self-test.
type breaks struct {
	hwIgnoresISR        bool // HW over every replica that has fetched, ISR ignored
	truncateToHW        bool // a diverging follower truncates to its HW
	expandBeforeCatchUp bool // a follower joins the ISR on its first fetch
}

// New returns the core of replica self, with a log holding [logStart, leo) and a high watermark
// hw (from a checkpoint; clamped to the log). It has no role until BecomeLeader or BecomeFollower.
func New(self int32, cfg Config, logStart, leo, hw int64) *Core {
	if cfg.LagTime <= 0 {
		cfg.LagTime = DefaultLagTime
	}
	return &Core{self: self, cfg: cfg, logStart: logStart, leo: leo, hw: clamp(hw, logStart, leo),
		followers: map[int32]*follower{}}
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

// Role returns the current role and the metadata it was given with.
func (c *Core) Role() (Role, Metadata) { return c.role, c.md }

// HighWatermark returns the HW.
func (c *Core) HighWatermark() int64 { return c.hw }

// LogEndOffset returns the LEO the owner last reported.
func (c *Core) LogEndOffset() int64 { return c.leo }

// EpochStartOffset returns the start offset of the current leader epoch (leaders only).
func (c *Core) EpochStartOffset() int64 { return c.epochStart }

// BecomeLeader makes the replica lead in md.LeaderEpoch (md.Leader must be self). The owner has
// recorded (epoch -> leo) in its log first. Follower state is reset: every follower's LEO is
// unknown and ISR members count as caught up now, so they have LagTime to fetch. Waits of an earlier
// leadership stay (they complete when the HW passes them, as in Kafka).
func (c *Core) BecomeLeader(now time.Time, md Metadata, leo int64) Ready {
	c.role, c.md = RoleLeader, cloneMetadata(md)
	c.setLEO(leo)
	c.epochStart = leo
	c.pending = nil
	c.followers = map[int32]*follower{}
	for _, r := range md.Replicas {
		if r == c.self {
			continue
		}
		f := &follower{leo: -1, brokerEpoch: -1}
		if slices.Contains(md.ISR, r) {
			f.lastCaughtUp = now
		}
		c.followers[r] = f
	}
	return c.advance()
}

// BecomeFollower makes the replica follow md.Leader (NoLeader: nobody, until the next metadata).
// Every wait fails with ErrNotLeader.
func (c *Core) BecomeFollower(md Metadata) Ready {
	c.role, c.md = RoleFollower, cloneMetadata(md)
	c.pending = nil
	clear(c.followers)
	var r Ready
	for _, w := range c.waits {
		r.Completed = append(r.Completed, Completion{ID: w.id, Err: ErrNotLeader})
	}
	c.waits = nil
	// A follower's HW never exceeds its own log.
	c.hw = min(c.hw, c.leo)
	return r
}

// Update applies new metadata in the same leader epoch (an ISR or replica-set change). A change in
// leader epoch or leader must go through BecomeLeader or BecomeFollower instead.
func (c *Core) Update(md Metadata) Ready {
	c.md = cloneMetadata(md)
	if c.role != RoleLeader {
		return Ready{}
	}
	if c.pending != nil && md.PartitionEpoch > c.pending.PartitionEpoch {
		c.pending = nil // committed, or overtaken by another change
	}
	for r := range c.followers {
		if !slices.Contains(md.Replicas, r) {
			delete(c.followers, r)
		}
	}
	for _, r := range md.Replicas {
		if r != c.self && c.followers[r] == nil {
			c.followers[r] = &follower{leo: -1, brokerEpoch: -1}
		}
	}
	return c.advance()
}

// ProposalDone reports that the controller answered the in-flight ISR change proposed at
// partitionEpoch and that the local image has reached that answer's index. If the image still
// shows that partition epoch the change was refused; it is dropped so a later Tick or fetch can
// propose again.
func (c *Core) ProposalDone(partitionEpoch int32) {
	if c.pending != nil && c.pending.PartitionEpoch == partitionEpoch && c.md.PartitionEpoch == partitionEpoch {
		c.pending = nil
	}
}

// Pending returns the in-flight ISR change (nil: none).
func (c *Core) Pending() *ISRChange { return c.pending }

// Appended reports the local log end offset after an append (on a leader: durable under
// durability=always). It never moves the LEO backwards; use Truncated for that.
func (c *Core) Appended(leo int64) Ready {
	if leo > c.leo {
		c.leo = leo
	}
	if c.role == RoleLeader {
		return c.advance()
	}
	return Ready{}
}

// Truncated reports a truncation (follower divergence) or a full truncation that restarted the log at
// logStart. The HW is clamped to the new log.
func (c *Core) Truncated(logStart, leo int64) {
	c.logStart, c.leo = logStart, leo
	c.hw = clamp(c.hw, logStart, leo)
}

// LogStartAdvanced reports a new log start (retention on a leader, the leader's log start on a
// follower).
func (c *Core) LogStartAdvanced(logStart int64) {
	c.logStart = max(c.logStart, logStart)
	c.hw = max(c.hw, min(c.logStart, c.leo))
}

func (c *Core) setLEO(leo int64) {
	c.leo = leo
	c.hw = min(c.hw, leo)
}

// CheckMinISR is the check before an acks=all append: the committed ISR must hold at least minISR
// members.
func (c *Core) CheckMinISR(minISR int) error {
	if c.role != RoleLeader {
		return ErrNotLeader
	}
	if len(c.md.ISR) < minISR {
		return fmt.Errorf("%w: in-sync replicas %v, min.insync.replicas %d", ErrNotEnoughReplicas, c.md.ISR, minISR)
	}
	return nil
}

// AddWait registers an acks=all write that needs the HW to reach end (its last offset + 1). It may
// complete at once (in the returned Ready).
func (c *Core) AddWait(id uint64, end int64, minISR int) Ready {
	if c.role != RoleLeader {
		return Ready{Completed: []Completion{{ID: id, Err: ErrNotLeader}}}
	}
	if c.hw >= end {
		return Ready{Completed: []Completion{{ID: id, Err: c.completionErr(minISR)}}}
	}
	i, _ := slices.BinarySearchFunc(c.waits, end, func(w wait, e int64) int { return cmpInt64(w.end, e+1) })
	c.waits = slices.Insert(c.waits, i, wait{id: id, end: end, minISR: minISR})
	return Ready{}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CancelWait removes a wait (its request timed out). It reports whether the wait was still there.
func (c *Core) CancelWait(id uint64) bool {
	i := slices.IndexFunc(c.waits, func(w wait) bool { return w.id == id })
	if i < 0 {
		return false
	}
	c.waits = slices.Delete(c.waits, i, i+1)
	return true
}

func (c *Core) completionErr(minISR int) error {
	if len(c.md.ISR) < minISR {
		return ErrNotEnoughReplicasAfterAppend
	}
	return nil
}

// FollowerFetch is a replica fetch as the leader sees it.
type FollowerFetch struct {
	Replica     int32
	BrokerEpoch int64 // the follower's broker epoch (Fetch v15+ ReplicaState), -1 unknown
	FetchOffset int64
	// LastFetchedEpoch is the epoch of the follower's last batch (-1: none sent). When set, LocalEnd
	// must hold the leader log's EndOffsetForEpoch(LastFetchedEpoch).
	LastFetchedEpoch int32
	LocalEnd         EpochEnd
	// LogEnd is the leader log's end offset now. Under durability=always it may be ahead of the LEO
	// the core counts (appends not yet synced): followers may read up to it, and the range check
	// uses it.
	LogEnd int64
}

// FetchDecision is the leader's answer to a follower fetch.
type FetchDecision struct {
	// Diverging is set when the follower's log diverges: it gets this epoch and end offset and no
	// records, and its progress is not recorded.
	Diverging *EpochEnd
	// Upper bounds the records sent (the leader's LEO as known to the core).
	Upper         int64
	HighWatermark int64
	LogStart      int64
}

// OnFollowerFetch applies a follower's fetch: divergence check, then progress (its fetch offset is
// its LEO), caught-up time, a possible ISR expand and HW advance.
func (c *Core) OnFollowerFetch(now time.Time, f FollowerFetch) (FetchDecision, Ready, error) {
	if c.role != RoleLeader {
		return FetchDecision{}, Ready{}, ErrNotLeader
	}
	st := c.followers[f.Replica]
	if st == nil {
		return FetchDecision{}, Ready{}, fmt.Errorf("%w: broker %d", ErrNotReplica, f.Replica)
	}
	end := max(c.leo, f.LogEnd)
	d := FetchDecision{Upper: end, HighWatermark: c.hw, LogStart: c.logStart}
	if f.LastFetchedEpoch >= 0 {
		e := f.LocalEnd
		if e.Epoch < 0 {
			// The leader knows no epoch at or below the follower's: nothing the follower holds is
			// known to the leader, so it restarts from the leader's log start.
			return d, Ready{}, fmt.Errorf("%w: leader knows no epoch <= %d", ErrOffsetOutOfRange, f.LastFetchedEpoch)
		}
		if e.Epoch < f.LastFetchedEpoch || e.EndOffset < f.FetchOffset {
			d.Diverging = &EpochEnd{Epoch: e.Epoch, EndOffset: e.EndOffset}
			return d, Ready{}, nil
		}
	}
	if f.FetchOffset < c.logStart || f.FetchOffset > end {
		return d, Ready{}, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, f.FetchOffset, c.logStart, end)
	}
	// Caught up: reached the current LEO, or the LEO the leader had at the previous fetch.
	switch {
	case f.FetchOffset >= c.leo:
		st.lastCaughtUp = maxTime(st.lastCaughtUp, now)
	case st.everFetchedThisEpoch && f.FetchOffset >= st.lastFetchLeaderLEO:
		st.lastCaughtUp = maxTime(st.lastCaughtUp, st.lastFetch)
	}
	st.leo = f.FetchOffset
	st.brokerEpoch = f.BrokerEpoch
	st.lastFetch = now
	st.lastFetchLeaderLEO = c.leo
	st.everFetchedThisEpoch = true
	r := c.advance()
	if r.Propose == nil && c.pending == nil && !slices.Contains(c.md.ISR, f.Replica) &&
		(st.leo >= c.hw && st.leo >= c.epochStart || c.breaks.expandBeforeCatchUp) {
		isr := append(slices.Clone(c.md.ISR), f.Replica)
		r.Propose = c.propose(isr, map[int32]int64{f.Replica: st.brokerEpoch})
	}
	d.HighWatermark = c.hw
	return d, r, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Tick proposes an ISR shrink for members that have been out of sync for LagTime.
func (c *Core) Tick(now time.Time) Ready {
	if c.role != RoleLeader || c.pending != nil {
		return Ready{}
	}
	var out []int32
	for _, r := range c.md.ISR {
		if f := c.followers[r]; f != nil && c.outOfSync(now, f) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return Ready{}
	}
	isr := slices.DeleteFunc(slices.Clone(c.md.ISR), func(r int32) bool { return slices.Contains(out, r) })
	return Ready{Propose: c.propose(isr, nil)}
}

func (c *Core) outOfSync(now time.Time, f *follower) bool {
	return f.leo != c.leo && now.Sub(f.lastCaughtUp) > c.cfg.LagTime
}

func (c *Core) propose(isr []int32, epochs map[int32]int64) *ISRChange {
	if !slices.Contains(isr, c.self) {
		isr = append(isr, c.self)
	}
	// Canonical order: assignment order.
	ordered := make([]int32, 0, len(isr))
	for _, r := range c.md.Replicas {
		if slices.Contains(isr, r) {
			ordered = append(ordered, r)
		}
	}
	c.pending = &ISRChange{LeaderEpoch: c.md.LeaderEpoch, PartitionEpoch: c.md.PartitionEpoch, ISR: ordered,
		BrokerEpochs: epochs}
	return c.pending
}

// maximalISR reports whether r counts toward the HW: in the committed ISR or added by the
// in-flight change.
func (c *Core) maximalISR(r int32) bool {
	return slices.Contains(c.md.ISR, r) || (c.pending != nil && slices.Contains(c.pending.ISR, r))
}

// advance recomputes the HW on a leader and completes the waits it passes.
func (c *Core) advance() Ready {
	var r Ready
	hw := c.leo
	for id, f := range c.followers {
		counts := c.maximalISR(id)
		if c.breaks.hwIgnoresISR {
			counts = f.leo >= 0
		}
		if counts && f.leo < hw {
			hw = f.leo
		}
	}
	if hw > c.hw {
		c.hw = hw
		r.HighWatermark, r.HWChanged = hw, true
	}
	n := 0
	for n < len(c.waits) && c.waits[n].end <= c.hw {
		w := c.waits[n]
		r.Completed = append(r.Completed, Completion{ID: w.id, Err: c.completionErr(w.minISR)})
		n++
	}
	c.waits = c.waits[n:]
	return r
}

// FollowerFetched reports, on a follower, the leader's HW and log start from a fetch response,
// after its records (if any) were appended and the LEO reported with Appended. The follower's HW
// becomes min(leader's HW, own LEO).
func (c *Core) FollowerFetched(leaderHW, leaderLogStart int64) Ready {
	if c.role != RoleFollower {
		return Ready{}
	}
	if leaderLogStart > c.logStart {
		c.logStart = min(leaderLogStart, c.leo)
	}
	hw := clamp(min(leaderHW, c.leo), c.logStart, c.leo)
	if hw == c.hw {
		return Ready{}
	}
	c.hw = hw
	return Ready{HighWatermark: hw, HWChanged: true}
}

// TruncationOffset is where a follower cuts its log when the leader answers a fetch with diverging
// epoch div: the smaller of the leader's end offset for that epoch and the follower's own (local is
// the follower log's EndOffsetForEpoch(div.Epoch), -1/-1 when it knows no epoch), never above its
// LEO and never to the HW. When the follower does not know div.Epoch itself the cut may not be
// final; its next fetch asks again.
func (c *Core) TruncationOffset(div, local EpochEnd) int64 {
	if c.breaks.truncateToHW {
		return c.hw
	}
	to := min(div.EndOffset, c.leo)
	if local.Epoch >= 0 && local.EndOffset >= 0 {
		to = min(to, local.EndOffset)
	}
	return max(to, 0)
}

// FollowerStatus is the leader's view of one follower (for status pages and metrics).
type FollowerStatus struct {
	Replica      int32
	LogEndOffset int64 // -1: has not fetched since this replica became leader
	InISR        bool
	LagOffsets   int64         // leader LEO - follower LEO (leader LEO when unknown)
	LagTime      time.Duration // time since it was last caught up (0 if caught up now)
}

// Followers returns the leader's view of its followers, ordered by replica id.
func (c *Core) Followers(now time.Time) []FollowerStatus {
	if c.role != RoleLeader {
		return nil
	}
	out := make([]FollowerStatus, 0, len(c.followers))
	for _, r := range c.md.Replicas {
		f := c.followers[r]
		if f == nil {
			continue
		}
		s := FollowerStatus{Replica: r, LogEndOffset: f.leo, InISR: slices.Contains(c.md.ISR, r)}
		s.LagOffsets = c.leo - max(f.leo, 0)
		if f.leo < c.leo && !f.lastCaughtUp.IsZero() {
			s.LagTime = max(now.Sub(f.lastCaughtUp), 0)
		} else if f.leo < c.leo {
			s.LagTime = -1
		}
		out = append(out, s)
	}
	return out
}

func cloneMetadata(md Metadata) Metadata {
	md.Replicas = slices.Clone(md.Replicas)
	md.ISR = slices.Clone(md.ISR)
	return md
}
