package replica

import "github.com/sluice-io/sluice/raftlog/meta"

// The simulator's invariants, checked after every step. They rest on one
// record, w.committed: the log prefix that some leader's HW has passed,
// as that leader's log had it when its HW first passed each offset.
// Consumers may have read all of it, and every acknowledged write is in it,
// so it must never change and every later leader must hold it:
//
//  1. No acknowledged write is lost or changed: an acks=all completion
//     with a nil error comes from a leader whose committed ISR has at least
//     min.insync.replicas members (checked as it completes) and covers
//     offsets inside committed holding exactly its payloads (checked at the
//     end of the step that completed it); the
//     current leader holds all of committed; every live ISR member (of the
//     controller's image, running the registration the image knows) holds
//     committed up to the current leader's HW.
//  2. A leader's HW never goes backwards within one leadership.
//  3. Every live replica's log equals committed below min(its HW, the
//     committed length): replicas agree (same epochs and payloads) below
//     their HWs.
//  4. No two replicas accept writes in the same leader epoch (checked at the
//     append, in onProduce).
//  5. What consumers saw never vanishes: a leader whose HW passes the
//     committed length must hold committed below it (its log agrees), and
//     the current leader holds all of it (as in 1).
//
// match[n] (simNode.match) is how far node n's log agrees with committed;
// truncation lowers it and syncMatch raises it, so the checks are amortised
// O(1) per step.

func (w *world) syncMatch(n *simNode) {
	lim := min(n.log.leo(), int64(len(w.committed)))
	for n.match < lim && n.log.recs[n.match] == w.committed[n.match] {
		n.match++
	}
}

func (w *world) check() {
	if w.violation != "" {
		return
	}
	// Leaders extend committed (or contradict it).
	for _, n := range w.nodes[1:] {
		if !n.up {
			continue
		}
		hw := n.core.HighWatermark()
		if hw < 0 || hw > n.log.leo() {
			w.fail("replica %d: HW %d outside its log [0, %d]", n.id, hw, n.log.leo())
			return
		}
		role, md := n.core.Role()
		if role != RoleLeader {
			continue
		}
		if hw < n.leaderHW {
			w.fail("invariant 2: leader %d (epoch %d) moved its HW back from %d to %d", n.id, md.LeaderEpoch, n.leaderHW, hw)
			return
		}
		n.leaderHW = hw
		if c := int64(len(w.committed)); hw > c {
			w.syncMatch(n)
			if n.match < c {
				w.fail("invariant 5: leader %d (epoch %d) moved its HW to %d over a log that differs from committed data at offset %d (committed %d)",
					n.id, md.LeaderEpoch, hw, n.match, c)
				return
			}
			w.committed = append(w.committed, n.log.recs[c:hw]...)
		}
	}
	// Every replica agrees with committed below its HW.
	c := int64(len(w.committed))
	for _, n := range w.nodes[1:] {
		if !n.up {
			continue
		}
		w.syncMatch(n)
		if need := min(n.core.HighWatermark(), c); n.match < need {
			role, _ := n.core.Role()
			w.fail("invariant 3: replica %d (%v, HW %d, log %d) differs from committed data at offset %d",
				n.id, role, n.core.HighWatermark(), n.log.leo(), n.match)
			return
		}
	}
	// The current leader holds committed; live ISR members hold it up to the leader's HW.
	p, _ := w.img.Partition(simTopic, 0)
	if p.Leader != meta.NoLeader {
		if l := w.nodes[p.Leader]; w.current(l) {
			if role, md := l.core.Role(); role == RoleLeader && md.LeaderEpoch == p.LeaderEpoch {
				if l.match < c {
					w.fail("invariant 1/5: leader %d (epoch %d, log %d) lacks committed data from offset %d (committed %d)",
						l.id, md.LeaderEpoch, l.log.leo(), l.match, c)
					return
				}
				lhw := l.core.HighWatermark()
				for _, r := range p.ISR {
					if w.lossOnly {
						break
					}
					m := w.nodes[r]
					if r != l.id && w.current(m) && m.match < lhw {
						w.fail("invariant 1: ISR member %d (log %d) lacks committed data from offset %d below leader %d's HW %d",
							r, m.log.leo(), m.match, l.id, lhw)
						return
					}
				}
			}
		}
	}
	// Acknowledged writes are committed, unchanged.
	for _, a := range w.acks {
		for i, pl := range a.payloads {
			o := a.base + int64(i)
			if o >= c || w.committed[o] != (rec{a.epoch, pl}) {
				w.fail("invariant 1: acknowledged offset %d (payload %d, epoch %d, by leader %d) is not committed as such",
					o, pl, a.epoch, a.node)
				return
			}
		}
	}
	w.acks = w.acks[:0]
}

// current reports whether node n runs, registered as the image knows it.
func (w *world) current(n *simNode) bool {
	if !n.up || n.brokerEpoch == 0 {
		return false
	}
	b, ok := w.img.Broker(n.id)
	return ok && b.Epoch == n.brokerEpoch
}
