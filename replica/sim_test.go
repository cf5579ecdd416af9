package replica

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sluice-io/sluice/raftlog/controller"
	"github.com/sluice-io/sluice/raftlog/meta"
)

// A deterministic simulator of one partition's replication: 3 to 5 replicas
// each run the real Core behind a small I/O shell (like the broker's), the
// real controller.Core and meta.Apply decide sessions, fencing, leaders and
// ISR changes, and every message, timer and fault is an event on a virtual
// clock drawn from one seeded math/rand/v2 source. The invariants
// (siminv_test.go) are checked after every step, and after a final quiet
// phase the partition must have converged. A seed names one schedule.
//
// What is modelled:
//   - a node (simnode_test.go): a process generation (a restart is a new
//     process: a new Core, a new broker registration, the metadata replayed),
//     its disk (simlog_test.go: records, durable prefix, epoch cache, HW
//     checkpoint), its follower fetch loop (fetch with LastFetchedEpoch,
//     truncation on divergence, optionally OffsetForLeaderEpoch first), its
//     leader duties (produce with acks=all, waits, Tick, AlterPartition
//     proposals and ProposalDone, long-polled fetches), and durability:
//     always (a leader's fdatasync returns later; only then does its Core
//     hear of the append), interval, never (flush points);
//   - the controller (simctl_test.go): controller.Core over the image
//     meta.Apply builds, fed heartbeats, registrations and proposals, ticked
//     every simCtlTickEvery; entries commit in order after a short delay and
//     reach each node after its own delay (in raft order, possibly several at
//     once);
//   - the network: delays, slow messages (reordering), drops and duplicates
//     for fetches, OffsetForLeaderEpoch and produce requests; controller RPCs
//     are delayed and lost only to partitions (their clients retry);
//   - faults (simctl_test.go): process kill, power loss, pause, network
//     partition of a node, wiped disk, leadership moved by hand, controlled
//     shutdown, controller failover.

// Virtual timing. The controller's session is short so that a schedule of a
// few hundred steps sees fencing and elections.
const (
	simSessionTimeout = time.Second
	simLease          = 300 * time.Millisecond
	simCtlTickEvery   = 100 * time.Millisecond
	simNodeTickEvery  = 100 * time.Millisecond // heartbeat, Tick, timeouts
	simFetchTimeout   = 250 * time.Millisecond
	simWaitTimeout    = time.Second // a produce request's timeout
	simRegisterRetry  = 300 * time.Millisecond
	simProposeRetry   = 400 * time.Millisecond
	simMaxFetchRecs   = 8
	simSettle         = 5 * time.Second
)

var (
	simTopic  = meta.TopicID{0x51, 0x1c, 0xe0, 15: 1}
	simOrigin = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

type durability uint8

const (
	durAlways durability = iota
	durInterval
	durNever
)

func (d durability) String() string {
	return [...]string{"always", "interval", "never"}[d]
}

// simParams are one schedule's settings, drawn from its seed.
type simParams struct {
	rf, minISR int
	dur        durability
	flushEvery time.Duration // durInterval
	lagTime    time.Duration
	pDrop      float64 // per faulty message
	pDup       float64
	pSlow      float64 // a slow delivery (20-400ms): reorders
	faultMean  time.Duration
	pOfle      float64 // a new follower first asks OffsetForLeaderEpoch
	produceMax time.Duration
	preferred  bool // controller moves leadership back to the first replica
	steps      int
	settle     time.Duration // the quiet phase at the end (0: none)
}

func drawParams(r *rand.Rand, steps int) simParams {
	p := simParams{rf: 3 + r.IntN(3)}
	if r.IntN(2) == 0 {
		p.rf = 3 // RF 3 is the common case: half the schedules
	}
	p.minISR = 2
	if p.rf > 3 && r.IntN(2) == 0 {
		p.minISR = 3
	}
	p.dur = durability(r.IntN(3))
	p.flushEvery = time.Duration(50+r.IntN(250)) * time.Millisecond
	p.lagTime = time.Duration(300+r.IntN(500)) * time.Millisecond
	p.pDrop = []float64{0, 0.02, 0.1, 0.3}[r.IntN(4)]
	p.pDup = []float64{0, 0.02, 0.1}[r.IntN(3)]
	p.pSlow = []float64{0, 0.05, 0.2}[r.IntN(3)]
	p.faultMean = time.Duration(100+r.IntN(600)) * time.Millisecond
	p.pOfle = []float64{0, 0.5, 1}[r.IntN(3)]
	p.produceMax = time.Duration(5+r.IntN(40)) * time.Millisecond
	p.preferred = r.IntN(2) == 0
	p.steps = steps
	p.settle = simSettle
	return p
}

func (p simParams) String() string {
	return fmt.Sprintf("rf=%d min.isr=%d durability=%v lag=%v drop=%.2f dup=%.2f slow=%.2f faults/%v ofle=%.1f preferred=%v",
		p.rf, p.minISR, p.dur, p.lagTime, p.pDrop, p.pDup, p.pSlow, p.faultMean, p.pOfle, p.preferred)
}

// Events.

type evKind uint8

const (
	evFetchReq evKind = iota + 1
	evFetchResp
	evOfleReq
	evOfleResp
	evProduce
	evMeta           // committed metadata up to m.index reaches a node
	evRegisterReply  // controller -> node
	evHeartbeatReply // controller -> node, only for an error (STALE_BROKER_EPOCH)
	evProposeReply   // controller -> node
	evHeartbeat      // node -> controller
	evRegister       // node -> controller
	evPropose        // node -> controller
	evCommit         // the controller's raft commits m.cmd
	evNodeTick
	evFetchTimer // follower: fetch again after an error's backoff
	evFetchWake  // leader: a parked fetch's wait is over
	evCtlTick
	evProducerTick
	evFault
	evRestart
	evHeal
	evShutdownKill // the end of a controlled shutdown
	evSync         // a leader's fdatasync (durability=always) returns
)

var evNames = [...]string{"", "fetch", "fetch-resp", "ofle", "ofle-resp", "produce", "meta", "register-reply", "heartbeat-reply",
	"propose-reply", "heartbeat", "register", "propose", "commit", "node-tick", "fetch-timer",
	"fetch-wake", "ctl-tick", "producer-tick", "fault", "restart", "heal", "shutdown-kill", "sync"}

func (k evKind) String() string { return evNames[k] }

// network messages are dropped when either end is partitioned at delivery.
func (k evKind) network() bool { return k <= evPropose }

const (
	ctlID      int32 = 0  // the controller's address
	producerID int32 = -1 // the producer client's address
)

type event struct {
	at   time.Duration
	seq  uint64
	kind evKind
	to   int32  // node id, ctlID or producerID
	gen  uint32 // the addressed node's process generation (node events)
	m    *msg
}

// msg is every message and timer payload (one type keeps the event small).
type msg struct {
	from        int32
	fromGen     uint32
	reqID       uint64
	brokerEpoch int64
	leaderEpoch int32
	offset      int64
	lastEpoch   int32
	status      uint8
	div         EpochEnd
	recs        []rec
	hw          int64
	index       uint64
	accepted    bool
	change      *ISRChange
	cmd         meta.Command
	reply       evKind // for evCommit: the reply to send the proposer
	payloads    []uint64
	incarnation [16]byte
	token       uint64
	parked      bool // a fetch parked at the leader
}

const (
	stOK uint8 = iota
	stErr
	stDiverging
	stOutOfRange // hw holds the leader's log end
)

// evHeap is a binary min-heap on (at, seq): ties are broken by insertion
// order, so the schedule is a function of the seed alone.
type evHeap []event

func (h evHeap) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}

func (h *evHeap) push(e event) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *evHeap) pop() event {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q[n] = event{}
	q = q[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && q.less(l, m) {
			m = l
		}
		if r < n && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// ackWait is an acks=all produce waiting on a leader.
type ackWait struct {
	node     int32
	epoch    int32
	base     int64
	payloads []uint64
	deadline time.Duration // the produce request's timeout
}

// simNode is one broker: a process (gen) with its disk (log).
type simNode struct {
	id          int32
	gen         uint32
	up          bool
	leaving     bool          // controlled shutdown under way
	pausedUntil time.Duration // events wait until then
	cutUntil    time.Duration // partitioned from everyone until then
	log         simLog
	core        *Core
	incarnation [16]byte
	incarnGen   byte

	brokerEpoch int64 // this process's registration; 0 until its reply arrived
	regReq      uint64
	regSent     time.Duration
	regNext     time.Duration // after a refusal, register again then
	applied     uint64        // raft index of the metadata this process has applied
	ticks       uint64
	lastFlush   time.Duration
	syncing     bool // an fdatasync is running (durability=always)

	// Follower.
	fetchToken uint64 // bumped when the fetch loop restarts (new leader, restart)
	fetchReq   uint64 // fetch in flight (0: none)
	ofleReq    uint64 // OffsetForLeaderEpoch in flight (0: none)
	fetchSent  time.Duration
	fetchNext  time.Duration // after an error, fetch again then

	// Leader.
	leaderHW  int64 // HW at the last check in this leadership (invariant 2)
	waits     map[uint64]*ackWait
	parked    []*msg // fetches waiting for data
	propPE    int32  // partition epoch of the proposal in flight
	propReq   uint64
	propSent  time.Duration
	propIndex uint64 // the answer's raft index, once answered
	propDone  bool   // answered (then ProposalDone once applied >= propIndex)

	match        int64         // invariants: log agrees with the committed prefix below match
	sessionOK    time.Duration // the controller last renewed its session, unfenced
	propInFlight int           // AlterPartition requests on the network
}

// simStats count what schedules exercised.
type simStats struct {
	schedules, steps                   int
	virtual                            time.Duration
	produced, acked, notEnough         int
	leaderChanges, truncations, shrink int
	expands, refused, divergences      int
	kills, powerLosses, wipes, pauses  int
	partitions, moves, shutdowns       int
	ctlFailovers, committed            int
	outOfRange                         int
}

func (s *simStats) add(o simStats) {
	s.schedules += o.schedules
	s.steps += o.steps
	s.virtual += o.virtual
	s.produced += o.produced
	s.acked += o.acked
	s.notEnough += o.notEnough
	s.leaderChanges += o.leaderChanges
	s.truncations += o.truncations
	s.shrink += o.shrink
	s.expands += o.expands
	s.refused += o.refused
	s.divergences += o.divergences
	s.kills += o.kills
	s.powerLosses += o.powerLosses
	s.wipes += o.wipes
	s.pauses += o.pauses
	s.partitions += o.partitions
	s.moves += o.moves
	s.shutdowns += o.shutdowns
	s.ctlFailovers += o.ctlFailovers
	s.committed += o.committed
	s.outOfRange += o.outOfRange
}

func (s simStats) String() string {
	return fmt.Sprintf("steps=%d virtual=%v produced=%d acked=%d not-enough-after-append=%d committed-offsets=%d "+
		"leader-changes=%d isr-shrinks=%d isr-expands=%d refused-proposals=%d divergences=%d truncations=%d "+
		"kills=%d power-losses=%d wipes=%d pauses=%d partitions=%d moves=%d shutdowns=%d controller-failovers=%d out-of-range=%d",
		s.steps, s.virtual.Round(time.Second), s.produced, s.acked, s.notEnough, s.committed, s.leaderChanges,
		s.shrink, s.expands, s.refused, s.divergences, s.truncations, s.kills, s.powerLosses, s.wipes, s.pauses,
		s.partitions, s.moves, s.shutdowns, s.ctlFailovers, s.outOfRange)
}

// world is one schedule.
type world struct {
	seed  uint64
	rng   *rand.Rand
	p     simParams
	brk   breaks
	now   time.Duration
	seq   uint64
	q     evHeap
	nodes []*simNode // by id; nodes[0] is nil (the controller)
	reqs  uint64

	ctl       *controller.Core
	img       *meta.Image
	raftIndex uint64
	history   []*meta.Image // history[i]: the image after raft index i
	commitAt  time.Duration

	nextPayload uint64
	nextWait    uint64

	// Invariant state (siminv_test.go).
	committed   []rec           // every offset any leader's HW has passed, as first seen
	epochWriter map[int32]int32 // leader epoch -> the replica that appended in it
	acks        []ackWait       // acknowledged this step, checked at its end
	taint       taint
	step        int
	violation   string

	settling bool
	// lossOnly skips invariant 1's check on ISR members, leaving the
	// checks that see data actually lost (TestSimBreaks uses it to show
	// that each broken rule loses data, not only breaks the ISR's promise).
	lossOnly bool

	stats simStats
	trace func(format string, args ...any)
}

// taint is the power loss (or wiped disk) whose window is open: until the
// image shows the replica out of the ISR with a registration that can no
// longer join (fenced or replaced), its short log could be counted as in
// sync, so no other node-level fault may happen (see faultAllowed).
type taint struct {
	open  bool
	node  int32
	epoch int64 // its registration when it lost data
}

func newWorld(seed uint64, steps int, brk breaks) *world {
	w := &world{seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x5eed5eed5eed5eed)), brk: brk,
		epochWriter: map[int32]int32{}}
	w.p = drawParams(w.rng, steps)
	w.nodes = make([]*simNode, w.p.rf+1)
	for id := 1; id <= w.p.rf; id++ {
		n := &simNode{id: int32(id), up: true, waits: map[uint64]*ackWait{}}
		n.incarnGen = 1
		n.incarnation = [16]byte{byte(id), n.incarnGen, 0xaa}
		w.nodes[id] = n
	}
	w.setup()
	return w
}

// setup builds the initial image (brokers registered and unfenced, one topic
// with one partition on every node in a shuffled order) and starts the
// timers.
func (w *world) setup() {
	w.history = []*meta.Image{{}}
	w.img = w.history[0]
	mustCommit := func(cmd meta.Command) {
		w.raftIndex++
		next, _, err := meta.Apply(w.img, w.raftIndex, cmd)
		if err != nil {
			panic(fmt.Sprintf("sim setup: %v", err))
		}
		w.img = next
		w.history = append(w.history, next)
	}
	for _, n := range w.nodes[1:] {
		mustCommit(meta.RegisterBroker{NodeID: n.id, ClusterID: "sim", Incarnation: n.incarnation})
		n.brokerEpoch = int64(w.raftIndex)
	}
	for _, n := range w.nodes[1:] {
		mustCommit(meta.UnfenceBroker{NodeID: n.id, BrokerEpoch: n.brokerEpoch})
	}
	reps := make([]int32, 0, w.p.rf)
	for _, n := range w.nodes[1:] {
		reps = append(reps, n.id)
	}
	w.rng.Shuffle(len(reps), func(i, j int) { reps[i], reps[j] = reps[j], reps[i] })
	mustCommit(meta.CreateTopic{Name: "sim", TopicID: simTopic, Partitions: [][]int32{reps}})
	w.ctl = w.newController()
	for _, n := range w.nodes[1:] {
		n.core = w.newCore(n)
		n.applied = w.raftIndex
		w.onImage(n)
		w.at(time.Duration(w.rng.Int64N(int64(simNodeTickEvery))), evNodeTick, n.id, n.gen, nil)
	}
	w.at(simCtlTickEvery, evCtlTick, ctlID, 0, nil)
	w.at(w.produceGap(), evProducerTick, producerID, 0, nil)
	w.at(w.faultGap(), evFault, ctlID, 0, nil)
}

func (w *world) newController() *controller.Core {
	cfg := controller.Config{SessionTimeout: simSessionTimeout, Lease: simLease, LeaseGrace: simLease}
	if w.p.preferred {
		cfg.PreferredLeaderInterval = 1500 * time.Millisecond
	}
	c := controller.NewCore(cfg)
	c.BecameLeader(w.clock(), w.img)
	return c
}

func (w *world) newCore(n *simNode) *Core {
	c := New(n.id, Config{LagTime: w.p.lagTime}, 0, n.log.leo(), n.log.hwCkpt)
	c.breaks = w.brk
	return c
}

func (w *world) clock() time.Time { return simOrigin.Add(w.now) }

func (w *world) tracef(format string, args ...any) {
	if w.trace != nil {
		w.trace("%8.3fs #%d "+format, append([]any{w.now.Seconds(), w.step}, args...)...)
	}
}

func (w *world) at(d time.Duration, kind evKind, to int32, gen uint32, m *msg) {
	w.seq++
	w.q.push(event{at: w.now + d, seq: w.seq, kind: kind, to: to, gen: gen, m: m})
}

func (w *world) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

func (w *world) produceGap() time.Duration { return w.between(time.Millisecond, w.p.produceMax) }

func (w *world) faultGap() time.Duration {
	return time.Duration(w.rng.ExpFloat64() * float64(w.p.faultMean))
}

func (w *world) cut(id int32) bool { return id > 0 && w.nodes[id].cutUntil > w.now }

// send puts a message on the network from one address to another (to's
// process generation gen, for nodes). faulty messages may be dropped,
// duplicated or slow; the others only suffer partitions.
func (w *world) send(kind evKind, from, to int32, gen uint32, m *msg, faulty bool) {
	if w.cut(from) || w.cut(to) {
		return
	}
	if to > 0 && !w.nodes[to].up {
		return // no connection to a dead process
	}
	if faulty && w.p.pDrop > 0 && w.rng.Float64() < w.p.pDrop {
		w.tracef("drop %v %d->%d", kind, from, to)
		return
	}
	m.from = from
	w.at(w.netDelay(), kind, to, gen, m)
	if kind == evPropose {
		w.nodes[from].propInFlight++
	}
	if faulty && w.p.pDup > 0 && w.rng.Float64() < w.p.pDup {
		cp := *m
		w.at(w.netDelay(), kind, to, gen, &cp)
	}
}

func (w *world) netDelay() time.Duration {
	if w.p.pSlow > 0 && w.rng.Float64() < w.p.pSlow {
		return w.between(20*time.Millisecond, 400*time.Millisecond)
	}
	return w.between(500*time.Microsecond, 5*time.Millisecond)
}

// run plays the schedule: p.steps steps of faults and traffic, then (if
// p.settle) a quiet phase with every fault healed, after which the
// partition must have converged. It returns the violation ("" if none).
func (w *world) run() string {
	w.loop(func() bool { return w.step < w.p.steps })
	if w.violation == "" && w.p.settle > 0 {
		w.settle()
		end, limit := w.now+w.p.settle, w.step+50000
		w.loop(func() bool { return w.q[0].at <= end && w.step < limit })
		if w.violation == "" {
			w.checkSettled()
		}
	}
	w.stats.schedules = 1
	w.stats.steps = w.step
	w.stats.virtual = w.now
	w.stats.committed = len(w.committed)
	return w.violation
}

func (w *world) loop(more func() bool) {
	for w.violation == "" && len(w.q) > 0 && more() {
		ev := w.q.pop()
		w.now = ev.at
		if ev.to > 0 {
			n := w.nodes[ev.to]
			if ev.kind == evRestart || ev.kind == evHeal {
				// addressed to the node, whatever its process
			} else if !n.up || ev.gen != n.gen {
				continue // addressed to a process that is gone
			} else if n.pausedUntil > w.now {
				w.seq++
				ev.at, ev.seq = n.pausedUntil, w.seq
				w.q.push(ev) // a frozen process handles it when it wakes
				continue
			}
		}
		if ev.kind == evPropose {
			w.nodes[ev.m.from].propInFlight--
		}
		if ev.kind.network() && (w.cut(ev.to) || w.cut(ev.m.from)) {
			continue
		}
		if w.trace != nil {
			w.tracef("%v -> %d %s", ev.kind, ev.to, w.describe(ev))
		}
		w.dispatch(ev)
		w.step++
		w.check()
	}
}

// settle ends the faults: no more injected faults or produce requests, a
// clean network, every node running.
func (w *world) settle() {
	w.tracef("settle")
	w.settling = true
	w.p.pDrop, w.p.pDup, w.p.pSlow = 0, 0, 0
	for _, n := range w.nodes[1:] {
		n.cutUntil = 0
		n.pausedUntil = min(n.pausedUntil, w.now)
		if !n.up {
			w.seq++
			w.q.push(event{at: w.now + time.Millisecond, seq: w.seq, kind: evRestart, to: n.id})
		} else {
			w.at(time.Millisecond, evMeta, n.id, n.gen, &msg{index: w.raftIndex})
		}
	}
}

// checkSettled is the liveness check after settling: one leader, every
// replica in the ISR with the leader's log, and the HW at the log end.
func (w *world) checkSettled() {
	p, _ := w.img.Partition(simTopic, 0)
	if p.Leader == meta.NoLeader {
		w.fail("liveness: no leader %v after settling (isr %v)", w.p.settle, p.ISR)
		return
	}
	l := w.nodes[p.Leader]
	role, md := Role(0), Metadata{}
	if l.core != nil {
		role, md = l.core.Role()
	}
	if !w.current(l) || role != RoleLeader || md.LeaderEpoch != p.LeaderEpoch {
		w.fail("liveness: the image's leader %d (epoch %d) is not leading after settling (%v, epoch %d)", l.id, p.LeaderEpoch, role, md.LeaderEpoch)
		return
	}
	if len(p.ISR) != w.p.rf {
		w.fail("liveness: ISR %v after settling", p.ISR)
		return
	}
	leo, hw := l.log.leo(), l.core.HighWatermark()
	if hw != leo {
		w.fail("liveness: leader %d HW %d, log end %d after settling", l.id, hw, leo)
		return
	}
	for _, n := range w.nodes[1:] {
		w.syncMatch(n)
		if !w.current(n) || n.log.leo() != leo || n.match != leo || n.core.HighWatermark() != hw {
			w.fail("liveness: replica %d (log %d, agrees to %d, HW %d) has not converged on leader %d's log %d after settling",
				n.id, n.log.leo(), n.match, n.core.HighWatermark(), l.id, leo)
			return
		}
	}
}

func (w *world) describe(ev event) string {
	m := ev.m
	if m == nil {
		return ""
	}
	switch ev.kind {
	case evFetchReq:
		return fmt.Sprintf("from %d epoch %d offset %d last-epoch %d", m.from, m.leaderEpoch, m.offset, m.lastEpoch)
	case evFetchResp:
		return fmt.Sprintf("status %d offset %d recs %d hw %d div %+v", m.status, m.offset, len(m.recs), m.hw, m.div)
	case evOfleReq:
		return fmt.Sprintf("from %d epoch %d for %d", m.from, m.leaderEpoch, m.lastEpoch)
	case evOfleResp:
		return fmt.Sprintf("status %d %+v", m.status, m.div)
	case evCommit:
		return fmt.Sprintf("%v %+v", m.cmd.Type(), m.cmd)
	case evPropose:
		return fmt.Sprintf("from %d %+v", m.from, *m.change)
	case evProduce:
		return fmt.Sprintf("%d records", len(m.payloads))
	case evMeta, evProposeReply, evRegisterReply:
		return fmt.Sprintf("index %d accepted %v", m.index, m.accepted)
	}
	return ""
}

func (w *world) dispatch(ev event) {
	m := ev.m
	switch ev.kind {
	case evCtlTick:
		for _, cmd := range w.ctl.Tick(w.clock(), w.img) {
			w.propose(cmd, 0, 0, nil)
		}
		w.at(simCtlTickEvery, evCtlTick, ctlID, 0, nil)
	case evCommit:
		w.commit(m)
	case evHeartbeat:
		reply, cmds := w.ctl.Heartbeat(w.clock(), w.img, controller.Heartbeat{NodeID: m.from, BrokerEpoch: m.brokerEpoch,
			MetadataOffset: m.index})
		if reply.ErrorCode == 0 && !reply.Fenced {
			w.nodes[m.from].sessionOK = w.now
		}
		if reply.ErrorCode != 0 {
			w.send(evHeartbeatReply, ctlID, m.from, m.fromGen, &msg{brokerEpoch: m.brokerEpoch}, false)
		}
		for _, cmd := range cmds {
			w.propose(cmd, 0, 0, nil)
		}
	case evRegister:
		w.propose(meta.RegisterBroker{NodeID: m.from, ClusterID: "sim", Incarnation: m.incarnation}, m.from, m.fromGen,
			&msg{reply: evRegisterReply, reqID: m.reqID})
	case evPropose:
		w.onPropose(m)
	case evProducerTick:
		if !w.settling {
			w.produce()
			w.at(w.produceGap(), evProducerTick, producerID, 0, nil)
		}
	case evFault:
		if !w.settling {
			w.fault()
			w.at(w.faultGap(), evFault, ctlID, 0, nil)
		}
	case evRestart:
		w.restart(w.nodes[ev.to])
	case evHeal:
		w.nodeEvent(w.nodes[ev.to], ev.kind, m)
	default:
		w.nodeEvent(w.nodes[ev.to], ev.kind, m)
	}
}

func (w *world) fail(format string, args ...any) {
	if w.violation != "" {
		return
	}
	w.violation = fmt.Sprintf("step %d (t=%v): %s", w.step, w.now, fmt.Sprintf(format, args...))
}

// dump describes every node, for a failure report.
func (w *world) dump() string {
	var b strings.Builder
	p, _ := w.img.Partition(simTopic, 0)
	fmt.Fprintf(&b, "image: leader %d epoch %d/%d isr %v; committed %d\n", p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.ISR, len(w.committed))
	for _, n := range w.nodes[1:] {
		fmt.Fprintf(&b, "node %d up=%v gen=%d epoch=%d applied=%d leo=%d flushed=%d match=%d epochs=%v", n.id, n.up, n.gen,
			n.brokerEpoch, n.applied, n.log.leo(), n.log.flushed, n.match, n.log.epochs)
		if n.core != nil {
			role, md := n.core.Role()
			fmt.Fprintf(&b, " %v epoch=%d hw=%d isr=%v", role, md.LeaderEpoch, n.core.HighWatermark(), md.ISR)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
