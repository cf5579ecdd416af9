package replica

import (
	"slices"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// Controller side.

// propose hands a command to the controller's raft; it commits in order
// after a short delay. reply (if not nil) is sent to node to once committed.
func (w *world) propose(cmd meta.Command, to int32, gen uint32, reply *msg) {
	w.commitAt = max(w.commitAt, w.now) + w.between(200*time.Microsecond, 3*time.Millisecond)
	m := reply
	if m == nil {
		m = &msg{}
	}
	m.cmd, m.from, m.fromGen = cmd, to, gen
	w.seq++
	w.q.push(event{at: w.commitAt, seq: w.seq, kind: evCommit, to: ctlID, m: m})
}

func (w *world) commit(m *msg) {
	w.raftIndex++
	next, delta, err := meta.Apply(w.img, w.raftIndex, m.cmd)
	w.img = next
	w.history = append(w.history, next)
	ok := err == nil && len(delta.Rejected) == 0
	if _, alter := m.cmd.(meta.AlterPartition); alter {
		if ok && delta.Changed() {
			if len(delta.Partitions) > 0 && delta.Partitions[0].Old != nil &&
				len(delta.Partitions[0].New.ISR) > len(delta.Partitions[0].Old.ISR) {
				w.stats.expands++
			} else {
				w.stats.shrink++
			}
		} else {
			w.stats.refused++
		}
	}
	if w.trace != nil && (err != nil || len(delta.Rejected) > 0) {
		w.tracef("  rejected: %v %v", err, delta.Rejected)
	}
	if m.reply != 0 {
		r := &msg{reqID: m.reqID, index: w.raftIndex, accepted: ok}
		w.send(m.reply, ctlID, m.from, m.fromGen, r, false)
	}
	for _, n := range w.nodes[1:] {
		if n.up {
			w.send(evMeta, ctlID, n.id, n.gen, &msg{index: w.raftIndex}, false)
		}
	}
}

// onPropose turns a leader's ISRChange into an AlterPartition (filtered by
// the controller as the broker's controller server does) and proposes it.
func (w *world) onPropose(m *msg) {
	ch := m.change
	it := meta.AlterPartitionItem{TopicID: simTopic, Partition: 0, LeaderEpoch: ch.LeaderEpoch,
		PartitionEpoch: ch.PartitionEpoch}
	for _, id := range ch.ISR {
		be := meta.NoBrokerEpoch
		if e, ok := ch.BrokerEpochs[id]; ok {
			be = e
		}
		it.ISR = append(it.ISR, meta.ISRMember{ID: id, BrokerEpoch: be})
	}
	cmd := meta.AlterPartition{ProposerID: m.from, ProposerEpoch: m.brokerEpoch, Partitions: []meta.AlterPartitionItem{it}}
	cmd, dropped := w.ctl.FilterAlterPartition(w.clock(), w.img, cmd)
	if len(dropped) > 0 {
		w.tracef("  filtered: %v", dropped[0].Err)
		w.stats.refused++
		// Answered at once: the answer's index is the image's current one.
		w.send(evProposeReply, ctlID, m.from, m.fromGen, &msg{reqID: m.reqID, index: w.raftIndex}, false)
		return
	}
	w.propose(cmd, m.from, m.fromGen, &msg{reply: evProposeReply, reqID: m.reqID})
}

// The producer: acks=all, to the leader its (possibly stale) metadata names.
func (w *world) produce() {
	idx := w.raftIndex
	if w.rng.IntN(4) == 0 {
		idx -= min(idx-1, uint64(w.rng.IntN(6)))
	}
	p, ok := w.history[idx].Partition(simTopic, 0)
	to := p.Leader
	if !ok || to == meta.NoLeader || w.rng.IntN(20) == 0 {
		to = int32(1 + w.rng.IntN(w.p.rf))
	}
	k := 1 + w.rng.IntN(3)
	pl := make([]uint64, k)
	for i := range pl {
		w.nextPayload++
		pl[i] = w.nextPayload
	}
	w.send(evProduce, producerID, to, w.nodes[to].gen, &msg{payloads: pl}, true)
}

// Faults.

type faultKind uint8

const (
	fKill faultKind = iota
	fPowerLoss
	fPause
	fPartition
	fWipe
	fMove
	fShutdown
	fCtlFailover
	fNumKinds
)

var faultWeights = [fNumKinds]int{fKill: 4, fPowerLoss: 4, fPause: 3, fPartition: 3, fWipe: 1, fMove: 3, fShutdown: 1,
	fCtlFailover: 1}

func (w *world) fault() {
	total := 0
	for _, wt := range faultWeights {
		total += wt
	}
	x := w.rng.IntN(total)
	k := faultKind(0)
	for ; x >= faultWeights[k]; k++ {
		x -= faultWeights[k]
	}
	p, _ := w.img.Partition(simTopic, 0)
	target := int32(1 + w.rng.IntN(w.p.rf))
	if p.Leader != meta.NoLeader && w.rng.IntN(2) == 0 {
		target = p.Leader // leaders are the interesting victims
	}
	n := w.nodes[target]
	if !w.faultAllowed(k, n, p) {
		return
	}
	switch k {
	case fKill, fPowerLoss, fWipe:
		if !n.up {
			return
		}
		w.kill(n, k == fPowerLoss, k == fWipe, w.between(20*time.Millisecond, 2*time.Second))
	case fPause:
		if !n.up || n.pausedUntil > w.now {
			return
		}
		w.stats.pauses++
		n.pausedUntil = w.now + w.between(50*time.Millisecond, 2*time.Second)
		w.tracef("  pause node %d until %v", n.id, n.pausedUntil)
	case fPartition:
		if n.cutUntil > w.now {
			return
		}
		w.stats.partitions++
		n.cutUntil = w.now + w.between(50*time.Millisecond, 2*time.Second)
		w.tracef("  partition node %d until %v", n.id, n.cutUntil)
		w.seq++
		w.q.push(event{at: n.cutUntil, seq: w.seq, kind: evHeal, to: n.id, gen: n.gen})
	case fMove:
		var cands []int32
		for _, r := range p.ISR {
			if b, ok := w.img.Broker(r); ok && !b.Fenced && r != p.Leader {
				cands = append(cands, r)
			}
		}
		if len(cands) == 0 || p.Leader == meta.NoLeader {
			return
		}
		w.stats.moves++
		to := cands[w.rng.IntN(len(cands))]
		w.tracef("  move leadership %d -> %d", p.Leader, to)
		w.propose(meta.ChangePartition{TopicID: simTopic, Partition: 0, Leader: to, ISR: p.ISR,
			LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}, 0, 0, nil)
	case fShutdown:
		if !n.up || n.leaving || n.brokerEpoch == 0 {
			return
		}
		cmds, err := w.ctl.ControlledShutdown(w.clock(), w.img, n.id, n.brokerEpoch)
		if err != nil {
			return
		}
		w.stats.shutdowns++
		n.leaving = true
		w.tracef("  controlled shutdown of node %d: %d commands", n.id, len(cmds))
		for _, cmd := range cmds {
			w.propose(cmd, 0, 0, nil)
		}
		w.at(w.between(20*time.Millisecond, 300*time.Millisecond), evShutdownKill, n.id, n.gen, nil)
	case fCtlFailover:
		w.stats.ctlFailovers++
		w.tracef("  controller failover")
		w.ctl = w.newController()
	}
}

// faultAllowed keeps schedules inside the failures the protocol is meant to
// survive. Losing unflushed data (power loss) or a whole disk is survivable
// while another in-sync replica holds the data and stays in the ISR. Kafka's
// ISR rules without eligible leader replicas (KIP-966) do lose acknowledged
// data when the ISR shrinks to one member that then loses its unflushed
// tail, so a power loss or wipe is allowed only when:
//   - no other such loss is still open (see taint);
//   - every other node is healthy: up, not paused, partitioned or shutting
//     down, registered as the image knows it and unfenced, its session
//     renewed within the last 300ms (so no fence is on its way);
//   - some other replica is in the ISR;
//   - the victim has no ISR change on its way to the controller (a leader's
//     shrink in flight could leave it the sole member).
//
// While one is open, no other node may crash, pause, be partitioned or be
// shut down, and leadership is not moved by hand: with min.insync.replicas
// 2, Kafka survives one lost copy, not two. Process kills, pauses and
// partitions alone are always allowed: they lose nothing durable. So is a
// power loss under durability=always: it takes only a leader's unsynced
// tail, which no HW has counted.
func (w *world) faultAllowed(k faultKind, n *simNode, p meta.Partition) bool {
	open := w.windowOpen()
	switch k {
	case fCtlFailover:
		return true
	case fPowerLoss, fWipe:
		if k == fPowerLoss && w.p.dur == durAlways {
			break // only an unsynced tail is lost, which no HW counted
		}
		if open || n.propInFlight > 0 || n.up && n.core.Pending() != nil {
			return false
		}
		for _, o := range w.nodes[1:] {
			if o == n {
				continue
			}
			b, _ := w.img.Broker(o.id)
			if !w.current(o) || b.Fenced || o.leaving || o.pausedUntil > w.now || o.cutUntil > w.now ||
				w.now-o.sessionOK > 300*time.Millisecond {
				return false
			}
		}
		return slices.ContainsFunc(p.ISR, func(r int32) bool { return r != n.id })
	}
	return !open || n.id == w.taint.node && k != fMove && k != fShutdown
}

func (w *world) windowOpen() bool {
	if !w.taint.open {
		return false
	}
	p, _ := w.img.Partition(simTopic, 0)
	b, _ := w.img.Broker(w.taint.node)
	if !slices.Contains(p.ISR, w.taint.node) && (b.Fenced || b.Epoch != w.taint.epoch) {
		w.taint.open = false
		w.tracef("  taint window of node %d closed", w.taint.node)
	}
	return w.taint.open
}

// kill stops a node's process. A power loss drops the unflushed tail; a wipe
// drops the disk (the node comes back as a new incarnation).
func (w *world) kill(n *simNode, powerLoss, wipe bool, down time.Duration) {
	// Under durability=always a power loss takes only what no HW counted.
	lost := wipe && n.log.leo() > 0 || powerLoss && w.p.dur != durAlways && n.log.flushed < n.log.leo()
	switch {
	case wipe:
		w.stats.wipes++
		n.log.wipe()
		n.incarnGen++
		n.incarnation = [16]byte{byte(n.id), n.incarnGen, 0xaa}
	case powerLoss:
		w.stats.powerLosses++
		n.log.recover(true)
	default:
		w.stats.kills++
		n.log.recover(false)
	}
	w.tracef("  kill node %d (power loss %v, wipe %v, lost data %v) for %v; log now %d", n.id, powerLoss, wipe, lost, down, n.log.leo())
	if lost {
		b, _ := w.img.Broker(n.id)
		w.taint = taint{open: true, node: n.id, epoch: b.Epoch}
	}
	n.match = min(n.match, n.log.leo())
	n.up, n.leaving = false, false
	n.gen++
	n.core = nil
	n.waits = map[uint64]*ackWait{}
	n.pausedUntil = 0
	n.parked = nil
	n.syncing = false
	w.seq++
	w.q.push(event{at: w.now + down, seq: w.seq, kind: evRestart, to: n.id})
}

func (w *world) restart(n *simNode) {
	if n.up {
		return
	}
	n.up = true
	n.gen++
	n.core = w.newCore(n)
	n.brokerEpoch, n.regReq, n.regNext, n.applied, n.ticks = 0, 0, 0, 0, 0
	n.fetchReq, n.ofleReq, n.fetchNext, n.propDone = 0, 0, 0, false
	n.fetchToken++
	w.tracef("  restart node %d with log %d hw %d", n.id, n.log.leo(), n.core.HighWatermark())
	w.at(w.between(time.Millisecond, 5*time.Millisecond), evMeta, n.id, n.gen, &msg{index: w.raftIndex})
	w.at(w.between(0, simNodeTickEvery), evNodeTick, n.id, n.gen, nil)
}
