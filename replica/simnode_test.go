package replica

import (
	"errors"
	"slices"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// The simulator's broker shell around Core: what the broker's partition
// goroutine does with metadata, produce requests, follower fetches and the
// Core's outputs.

func (w *world) nodeEvent(n *simNode, kind evKind, m *msg) {
	switch kind {
	case evNodeTick:
		w.nodeTick(n)
	case evMeta:
		if m.index > n.applied {
			n.applied = m.index
			w.onImage(n)
		}
	case evRegisterReply:
		if m.reqID != n.regReq || n.brokerEpoch != 0 {
			return
		}
		n.regReq, n.regNext = 0, w.now+simRegisterRetry
		if m.accepted {
			n.brokerEpoch = int64(m.index)
			w.tracef("  node %d registered with epoch %d", n.id, n.brokerEpoch)
			w.onImage(n)
		}
	case evHeartbeatReply:
		if m.brokerEpoch == n.brokerEpoch {
			// STALE_BROKER_EPOCH: a later registration of this node (a
			// retried request that committed after all) replaced this one.
			// Register again; meanwhile the image is not this process's.
			w.tracef("  node %d: registration %d is stale", n.id, n.brokerEpoch)
			n.brokerEpoch, n.regNext = 0, w.now
		}
	case evProposeReply:
		if n.core.Pending() == nil || n.propDone || m.reqID != n.propReq {
			return
		}
		n.propDone, n.propIndex = true, m.index
		w.proposalDone(n)
	case evProduce:
		w.onProduce(n, m)
	case evFetchReq:
		w.onFetch(n, m, true)
	case evFetchWake:
		if m.parked {
			m.parked = false
			w.onFetch(n, m, false)
		}
	case evFetchResp:
		w.onFetchResp(n, m)
	case evOfleReq:
		w.onOfle(n, m)
	case evOfleResp:
		w.onOfleResp(n, m)
	case evFetchTimer:
		if m.token == n.fetchToken && n.fetchReq == 0 && n.ofleReq == 0 {
			w.sendFetch(n)
		}
	case evHeal:
		if n.up && n.cutUntil <= w.now {
			w.at(w.between(time.Millisecond, 5*time.Millisecond), evMeta, n.id, n.gen, &msg{index: w.raftIndex})
		}
	case evSync:
		w.synced(n, m.offset)
	case evShutdownKill:
		n.log.flush() // a clean shutdown flushes
		w.kill(n, false, false, w.between(50*time.Millisecond, time.Second))
	}
}

// nodeTick is the node's periodic work: register or heartbeat, the leader's
// Tick, request timeouts, flushes and the HW checkpoint.
func (w *world) nodeTick(n *simNode) {
	n.ticks++
	w.at(simNodeTickEvery, evNodeTick, n.id, n.gen, nil)
	if n.brokerEpoch == 0 {
		if n.regReq == 0 && w.now >= n.regNext || n.regReq != 0 && w.now-n.regSent > simRegisterRetry {
			w.reqs++
			n.regReq, n.regSent = w.reqs, w.now
			w.send(evRegister, n.id, ctlID, 0, &msg{fromGen: n.gen, reqID: n.regReq, incarnation: n.incarnation}, false)
		}
	} else {
		w.send(evHeartbeat, n.id, ctlID, 0, &msg{fromGen: n.gen, brokerEpoch: n.brokerEpoch, index: n.applied}, false)
	}
	switch role, md := n.core.Role(); role {
	case RoleLeader:
		w.ready(n, n.core.Tick(w.clock()))
		if ch := n.core.Pending(); ch != nil && !n.propDone && w.now-n.propSent > simProposeRetry {
			w.sendProposal(n, ch) // the controller RPC timed out: ask again (fenced by epochs)
		}
		w.expireWaits(n)
	case RoleFollower:
		inFlight := n.fetchReq != 0 || n.ofleReq != 0
		if md.Leader != meta.NoLeader && (inFlight && w.now-n.fetchSent > simFetchTimeout || !inFlight && w.now >= n.fetchNext) {
			n.fetchReq, n.ofleReq = 0, 0
			w.sendFetch(n) // timed out, or the loop stalled
		}
	}
	switch w.p.dur {
	case durInterval:
		if w.now-n.lastFlush >= w.p.flushEvery {
			n.log.flush()
			n.lastFlush = w.now
		}
	case durNever:
		if w.rng.IntN(20) == 0 {
			n.log.flush() // the OS writes dirty pages back now and then
		}
	}
	if n.ticks%2 == 0 {
		n.log.hwCkpt = n.core.HighWatermark()
	}
}

// expireWaits cancels acks=all waits past the request timeout.
func (w *world) expireWaits(n *simNode) {
	var ids []uint64
	for id, wt := range n.waits {
		if w.now >= wt.deadline {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // map order is random; keep the schedule a function of the seed
	for _, id := range ids {
		n.core.CancelWait(id)
		delete(n.waits, id)
	}
}

// onImage applies the metadata at n.applied to the node's Core: a newer
// leader epoch (possibly several at once) makes it lead or follow, a newer
// partition epoch in the same leader epoch is an Update.
func (w *world) onImage(n *simNode) {
	if n.brokerEpoch == 0 {
		return
	}
	img := w.history[n.applied]
	if b, ok := img.Broker(n.id); !ok || b.Epoch != n.brokerEpoch {
		return // the image predates this process's registration
	}
	p, _ := img.Partition(simTopic, 0)
	md := Metadata{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Replicas: p.Replicas, ISR: p.ISR}
	role, cur := n.core.Role()
	switch {
	case role == RoleNone || md.LeaderEpoch > cur.LeaderEpoch:
		if md.Leader == n.id {
			w.becomeLeader(n, md)
		} else {
			w.becomeFollower(n, md, role == RoleNone)
		}
	case md.LeaderEpoch == cur.LeaderEpoch && md.PartitionEpoch > cur.PartitionEpoch:
		w.ready(n, n.core.Update(md))
	}
	w.proposalDone(n)
}

func (w *world) becomeLeader(n *simNode, md Metadata) {
	w.tracef("  node %d leads epoch %d isr %v leo %d hw %d", n.id, md.LeaderEpoch, md.ISR, n.log.leo(), n.core.HighWatermark())
	w.stats.leaderChanges++
	n.log.flush()                             // an unsynced tail of an earlier leadership: sync it first
	n.log.assign(md.LeaderEpoch, n.log.leo()) // recorded (durably) before accepting writes
	rd := n.core.BecomeLeader(w.clock(), md, n.log.leo())
	n.leaderHW = n.core.HighWatermark()
	n.fetchToken++
	n.fetchReq, n.ofleReq = 0, 0
	n.propDone = false
	w.ready(n, rd)
}

func (w *world) becomeFollower(n *simNode, md Metadata, restarted bool) {
	w.tracef("  node %d follows %d in epoch %d (leo %d hw %d)", n.id, md.Leader, md.LeaderEpoch, n.log.leo(), n.core.HighWatermark())
	w.ready(n, n.core.BecomeFollower(md))
	n.parked = n.parked[:0]
	n.fetchToken++
	n.fetchReq, n.ofleReq, n.fetchNext = 0, 0, 0
	if md.Leader == meta.NoLeader {
		return
	}
	if n.log.latestEpoch() >= 0 && (w.p.pOfle > 0 && w.rng.Float64() < w.p.pOfle || restarted && w.rng.IntN(2) == 0) {
		// Before fetching, ask the leader where the latest local epoch ends
		// (KIP-101/279) and truncate by the rule. The fetch's own divergence
		// check would find the same; this is the path a restarted follower
		// of old took, and the one where truncating to the HW loses data.
		w.reqs++
		n.ofleReq, n.fetchSent = w.reqs, w.now
		w.send(evOfleReq, n.id, md.Leader, w.nodes[md.Leader].gen,
			&msg{fromGen: n.gen, reqID: n.ofleReq, leaderEpoch: md.LeaderEpoch, lastEpoch: n.log.latestEpoch()}, true)
		return
	}
	w.sendFetch(n)
}

// ready does what a Core output asks: complete waits, send a proposal.
func (w *world) ready(n *simNode, rd Ready) {
	for _, c := range rd.Completed {
		wt := n.waits[c.ID]
		if wt == nil {
			w.fail("node %d: completion of unknown wait %d", n.id, c.ID)
			return
		}
		delete(n.waits, c.ID)
		switch c.Err {
		case nil:
			if _, md := n.core.Role(); len(md.ISR) < w.p.minISR {
				w.fail("invariant 1: leader %d acknowledged offsets [%d, %d) with ISR %v, below min.insync.replicas %d",
					n.id, wt.base, wt.base+int64(len(wt.payloads)), md.ISR, w.p.minISR)
				return
			}
			w.stats.acked++
			w.acks = append(w.acks, *wt)
		case ErrNotEnoughReplicasAfterAppend:
			w.stats.notEnough++
		}
	}
	if rd.Propose != nil {
		n.propDone = false
		w.sendProposal(n, rd.Propose)
	}
}

func (w *world) sendProposal(n *simNode, ch *ISRChange) {
	w.reqs++
	n.propPE, n.propSent, n.propReq = ch.PartitionEpoch, w.now, w.reqs
	cp := *ch
	cp.ISR = slices.Clone(ch.ISR)
	w.send(evPropose, n.id, ctlID, 0, &msg{fromGen: n.gen, reqID: n.propReq, brokerEpoch: n.brokerEpoch, change: &cp}, false)
}

// proposalDone tells the Core its proposal was answered once the local image
// has reached the answer's index.
func (w *world) proposalDone(n *simNode) {
	if n.propDone && n.applied >= n.propIndex && n.core.Pending() != nil {
		n.core.ProposalDone(n.propPE)
		n.propDone = false
	}
}

func (w *world) onProduce(n *simNode, m *msg) {
	role, md := n.core.Role()
	if role != RoleLeader || n.core.CheckMinISR(w.p.minISR) != nil {
		return
	}
	if wr, ok := w.epochWriter[md.LeaderEpoch]; ok && wr != n.id {
		w.fail("invariant 4: replicas %d and %d both accepted writes in leader epoch %d", wr, n.id, md.LeaderEpoch)
		return
	}
	w.epochWriter[md.LeaderEpoch] = n.id
	w.stats.produced++
	base := n.log.leo()
	n.log.appendLeader(md.LeaderEpoch, m.payloads)
	end := n.log.leo()
	if w.p.dur == durAlways {
		w.startSync(n) // the Core hears of the append once its fdatasync returned
	} else {
		w.ready(n, n.core.Appended(end))
	}
	w.nextWait++
	id := w.nextWait
	n.waits[id] = &ackWait{node: n.id, epoch: md.LeaderEpoch, base: base, payloads: m.payloads, deadline: w.now + simWaitTimeout}
	w.ready(n, n.core.AddWait(id, end, w.p.minISR))
	// New data completes the parked (long-poll) fetches.
	parked := n.parked
	n.parked = nil
	for _, pm := range parked {
		if pm.parked {
			pm.parked = false
			w.onFetch(n, pm, false)
		}
	}
	n.parked = parked[:0]
}

// startSync starts an fdatasync of a leader's log (durability=always)
// unless one is running: it covers what was written when it started.
func (w *world) startSync(n *simNode) {
	if !n.syncing {
		n.syncing = true
		w.at(w.between(200*time.Microsecond, 3*time.Millisecond), evSync, n.id, n.gen, &msg{offset: n.log.leo()})
	}
}

// synced reports a finished fdatasync to the Core and starts the next one
// if more was written meanwhile.
func (w *world) synced(n *simNode, upTo int64) {
	n.syncing = false
	upTo = min(upTo, n.log.leo()) // a truncation since then made its own cut durable
	n.log.flushed = max(n.log.flushed, upTo)
	w.ready(n, n.core.Appended(upTo))
	if n.log.flushed < n.log.leo() {
		w.startSync(n) // written meanwhile (or before this node stopped leading)
	}
}

func (w *world) sendFetch(n *simNode) {
	role, md := n.core.Role()
	if role != RoleFollower || md.Leader == meta.NoLeader {
		return
	}
	w.reqs++
	n.fetchReq, n.fetchSent = w.reqs, w.now
	w.send(evFetchReq, n.id, md.Leader, w.nodes[md.Leader].gen, &msg{fromGen: n.gen, reqID: n.fetchReq,
		brokerEpoch: n.brokerEpoch, leaderEpoch: md.LeaderEpoch, offset: n.log.leo(), lastEpoch: n.log.latestEpoch()}, true)
}

// onFetch is the leader's side of a follower fetch: fenced by the
// follower's current leader epoch, then the Core decides. A fetch with
// nothing to return may be parked (Kafka's replica.fetch.wait.max.ms) until
// data arrives or its wait ends; it is then handled again, as Kafka's
// DelayedFetch reads again on completion.
func (w *world) onFetch(n *simNode, m *msg, mayPark bool) {
	role, md := n.core.Role()
	r := &msg{reqID: m.reqID, offset: m.offset, leaderEpoch: m.leaderEpoch}
	if role != RoleLeader || md.LeaderEpoch != m.leaderEpoch {
		r.status = stErr // NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH
	} else {
		ff := FollowerFetch{Replica: m.from, BrokerEpoch: m.brokerEpoch, FetchOffset: m.offset, LastFetchedEpoch: m.lastEpoch,
			LogEnd: n.log.leo()}
		if m.lastEpoch >= 0 {
			ff.LocalEnd = n.log.endOffsetFor(m.lastEpoch)
		}
		d, rd, err := n.core.OnFollowerFetch(w.clock(), ff)
		w.ready(n, rd)
		switch {
		case errors.Is(err, ErrOffsetOutOfRange):
			r.status, r.hw = stOutOfRange, n.log.leo()
		case err != nil:
			r.status = stErr
		case d.Diverging != nil:
			r.status, r.div = stDiverging, *d.Diverging
		default:
			if d.Upper > n.log.leo() {
				w.fail("node %d: fetch upper %d beyond the log end %d", n.id, d.Upper, n.log.leo())
				return
			}
			end := min(d.Upper, m.offset+simMaxFetchRecs)
			if end == m.offset && mayPark {
				m.parked = true
				n.parked = append(n.parked, m)
				w.at(w.between(20*time.Millisecond, 200*time.Millisecond), evFetchWake, n.id, n.gen, m)
				return
			}
			if end > m.offset {
				r.recs = slices.Clone(n.log.recs[m.offset:end])
			}
			r.hw = d.HighWatermark
		}
	}
	w.send(evFetchResp, n.id, m.from, m.fromGen, r, true)
}

func (w *world) onFetchResp(n *simNode, m *msg) {
	if m.reqID != n.fetchReq {
		return // a duplicate, or an answer to a fetch given up on
	}
	n.fetchReq = 0
	if role, md := n.core.Role(); role != RoleFollower || md.LeaderEpoch != m.leaderEpoch || n.log.leo() != m.offset {
		return // the node tick restarts the loop
	}
	switch m.status {
	case stErr:
		n.fetchNext = w.now + w.between(10*time.Millisecond, 50*time.Millisecond)
		w.at(n.fetchNext-w.now, evFetchTimer, n.id, n.gen, &msg{token: n.fetchToken})
		return
	case stOutOfRange:
		// As Kafka's follower: ahead of the leader's log end, cut to it;
		// otherwise start over at the leader's log start (here always 0).
		w.stats.outOfRange++
		w.truncate(n, min(m.hw, n.log.leo()))
		if n.log.leo() <= m.hw {
			w.truncate(n, 0)
		}
	case stDiverging:
		w.stats.divergences++
		to := n.core.TruncationOffset(m.div, n.log.endOffsetFor(m.div.Epoch))
		w.truncate(n, to)
	case stOK:
		if len(m.recs) > 0 {
			if err := n.log.appendReplica(m.recs); err != nil {
				w.fail("node %d: follower append: %v", n.id, err)
				return
			}
			if w.p.dur == durAlways {
				n.log.flush()
			}
			n.core.Appended(n.log.leo())
		}
		n.core.FollowerFetched(m.hw, 0)
	}
	w.sendFetch(n)
}

func (w *world) onOfle(n *simNode, m *msg) {
	role, md := n.core.Role()
	r := &msg{reqID: m.reqID}
	if role != RoleLeader || md.LeaderEpoch != m.leaderEpoch {
		r.status = stErr
	} else {
		r.div = n.log.endOffsetFor(m.lastEpoch)
	}
	w.send(evOfleResp, n.id, m.from, m.fromGen, r, true)
}

func (w *world) onOfleResp(n *simNode, m *msg) {
	if m.reqID != n.ofleReq {
		return
	}
	n.ofleReq = 0
	if role, _ := n.core.Role(); role == RoleFollower && m.status == stOK {
		to := n.core.TruncationOffset(m.div, n.log.endOffsetFor(m.div.Epoch))
		w.truncate(n, to)
	}
	w.sendFetch(n)
}

func (w *world) truncate(n *simNode, to int64) {
	if to < n.log.leo() {
		w.stats.truncations++
		w.tracef("  node %d truncates %d -> %d (hw %d)", n.id, n.log.leo(), to, n.core.HighWatermark())
	}
	n.log.truncateTo(to)
	n.core.Truncated(0, n.log.leo())
	n.match = min(n.match, n.log.leo())
}
