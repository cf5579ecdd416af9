package meta

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var propSeed = flag.Uint64("meta.seed", 0, "extra seed for TestApplyDeterministic (0: derived from the clock)")

var sentinels = []error{
	ErrAlreadyApplied, ErrClusterIDMismatch, ErrDuplicateBroker, ErrUnknownBroker, ErrStaleBrokerEpoch, ErrInvalidBroker,
	ErrInvalidTopicName, ErrInvalidTopicID, ErrTopicExists, ErrUnknownTopic, ErrInvalidAssignment, ErrInvalidConfig,
	ErrUnknownPartition, ErrStaleEpoch, ErrInvalidISR, ErrIneligibleLeader, ErrProducerIDExhausted,
	ErrFencedBroker, ErrNotPartitionLeader, ErrIneligibleReplica, ErrDuplicatePartition,
}

func errClass(err error) string {
	if err == nil {
		return "ok"
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "unclassified: " + err.Error()
}

// gen proposes plausible commands against the current image: mostly valid,
// some stale or conflicting, as a real controller racing with itself would.
type gen struct {
	r      *rand.Rand
	nextID byte
}

func (g *gen) pick(n int) int { return g.r.IntN(n) }

func (g *gen) command(img *Image) Command {
	brokers := img.Brokers()
	topics := img.Topics()
	epochOf := func(b Broker) int64 {
		if g.pick(10) == 0 {
			return b.Epoch - 1 // stale
		}
		return b.Epoch
	}
	switch k := g.pick(100); {
	case k < 12 || len(brokers) == 0:
		id := int32(g.pick(6))
		inc := [16]byte{byte(id), byte(1 + g.pick(2))}
		return RegisterBroker{NodeID: id, ClusterID: "c", Incarnation: inc, Rack: []string{"", "r1", "r2"}[g.pick(3)],
			Addresses: Addresses{Internal: fmt.Sprintf("h%d:1", id)}}
	case k < 22:
		b := brokers[g.pick(len(brokers))]
		return FenceBroker{NodeID: b.NodeID, BrokerEpoch: epochOf(b)}
	case k < 40:
		b := brokers[g.pick(len(brokers))]
		return UnfenceBroker{NodeID: b.NodeID, BrokerEpoch: epochOf(b)}
	case k < 55:
		g.nextID++
		id := TopicID{0: g.nextID, 15: byte(g.pick(256))}
		if len(topics) > 0 && g.pick(10) == 0 {
			id = topics[g.pick(len(topics))].ID // conflicting id
		}
		name := fmt.Sprintf("t%d", g.pick(12))
		parts, rf := 1+g.pick(4), 1+g.pick(3)
		as, err := Place(img.PlacementBrokers(), parts, rf, g.pick(10))
		if err != nil {
			as = [][]int32{{int32(g.pick(6))}}
		}
		var cfg map[string]string
		if g.pick(2) == 0 {
			cfg = map[string]string{"retention.ms": fmt.Sprint(g.pick(1000)), "segment.bytes": "1024"}
		}
		return CreateTopic{Name: name, TopicID: id, Partitions: as, Configs: cfg}
	case k < 60 && len(topics) > 0:
		return DeleteTopic{TopicID: topics[g.pick(len(topics))].ID}
	case k < 66 && len(topics) > 0:
		top := topics[g.pick(len(topics))]
		as, err := Place(img.PlacementBrokers(), 1+g.pick(2), len(top.Partitions[0].Replicas), len(top.Partitions))
		if err != nil {
			as = [][]int32{top.Partitions[0].Replicas}
		}
		return CreatePartitions{TopicID: top.ID, Assignments: as}
	case k < 82 && len(topics) > 0:
		top := topics[g.pick(len(topics))]
		p := g.pick(len(top.Partitions))
		cur := top.Partitions[p]
		var isr []int32
		for _, r := range cur.Replicas {
			if g.pick(3) > 0 {
				isr = append(isr, r)
			}
		}
		if len(isr) == 0 {
			isr = []int32{cur.Replicas[g.pick(len(cur.Replicas))]}
		}
		g.r.Shuffle(len(isr), func(i, j int) { isr[i], isr[j] = isr[j], isr[i] })
		leader := isr[g.pick(len(isr))]
		if g.pick(8) == 0 {
			leader = NoLeader
		}
		le, pe := cur.LeaderEpoch, cur.PartitionEpoch
		if g.pick(6) == 0 {
			pe--
		}
		return ChangePartition{TopicID: top.ID, Partition: int32(p), Leader: leader, ISR: isr, LeaderEpoch: le, PartitionEpoch: pe}
	case k < 95 && len(topics) > 0:
		return g.alterPartition(img, brokers, topics)
	default:
		b := brokers[g.pick(len(brokers))]
		return AllocateProducerIDs{NodeID: b.NodeID, BrokerEpoch: epochOf(b)}
	}
}

// alterPartition proposes ISR changes as a partition leader would: mostly
// for partitions it leads, with current epochs and members' broker epochs,
// sometimes stale, foreign, repeated or naming a member's old epoch.
func (g *gen) alterPartition(img *Image, brokers []Broker, topics []*Topic) AlterPartition {
	b := brokers[g.pick(len(brokers))]
	if top := topics[g.pick(len(topics))]; g.pick(5) > 0 {
		if l, ok := img.Broker(top.Partitions[g.pick(len(top.Partitions))].Leader); ok {
			b = l // usually a current leader
		}
	}
	type tp struct {
		id TopicID
		p  int32
		pt Partition
	}
	var led, all []tp
	for _, top := range topics {
		for p, pt := range top.Partitions {
			all = append(all, tp{top.ID, int32(p), pt})
			if pt.Leader == b.NodeID {
				led = append(led, tp{top.ID, int32(p), pt})
			}
		}
	}
	cmd := AlterPartition{ProposerID: b.NodeID, ProposerEpoch: b.Epoch}
	if g.pick(12) == 0 {
		cmd.ProposerEpoch-- // stale
	}
	for range 1 + g.pick(4) {
		var x tp
		if len(led) > 0 && g.pick(5) > 0 {
			x = led[g.pick(len(led))]
		} else {
			x = all[g.pick(len(all))]
		}
		it := AlterPartitionItem{TopicID: x.id, Partition: x.p, LeaderEpoch: x.pt.LeaderEpoch, PartitionEpoch: x.pt.PartitionEpoch}
		switch g.pick(10) {
		case 0:
			it.PartitionEpoch--
		case 1:
			it.Partition += int32(len(x.pt.Replicas)) // may not exist
		}
		for _, r := range x.pt.Replicas {
			if (r != b.NodeID && g.pick(3) == 0) || (r == b.NodeID && g.pick(15) == 0) {
				continue // the leader itself rarely: an invalid ISR
			}
			m := ISRMember{ID: r, BrokerEpoch: NoBrokerEpoch}
			if rb, ok := img.Broker(r); ok && g.pick(2) == 0 {
				m.BrokerEpoch = rb.Epoch
				if g.pick(8) == 0 {
					m.BrokerEpoch-- // the member restarted since
				}
			}
			it.ISR = append(it.ISR, m)
		}
		g.r.Shuffle(len(it.ISR), func(i, j int) { it.ISR[i], it.ISR[j] = it.ISR[j], it.ISR[i] })
		cmd.Partitions = append(cmd.Partitions, it)
	}
	return cmd
}

// TestApplyDeterministic applies random command sequences on three
// independent replicas: A applies commands as generated, B applies them
// after an encode/decode round trip, C additionally replaces its image by a
// snapshot round trip at random points. All must agree at every step, on
// the error, the delta, the image and its encoding.
func TestApplyDeterministic(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	extra := *propSeed
	if extra == 0 {
		extra = uint64(time.Now().UnixNano())
	}
	seeds = append(seeds, extra)
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runReplicas(t, seed, 600)
		})
	}
}

func runReplicas(t *testing.T, seed uint64, steps int) {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	var a, b, c *Image
	applied := 0
	outcomes := map[string]int{}
	for step := 1; step <= steps; step++ {
		index := uint64(step)
		cmd := g.command(a)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d (rerun: go test -run TestApplyDeterministic -meta.seed=%d) step %d %#v: %s",
				seed, seed, step, cmd, fmt.Sprintf(format, args...))
		}
		wire, err := DecodeCommand(EncodeCommand(cmd))
		if err != nil {
			fail("decode: %v", err)
		}
		prevEnc := EncodeImage(a)
		na, da, ea := Apply(a, index, cmd)
		nb, db, eb := Apply(b, index, wire)
		if g.pick(10) == 0 {
			snap, err := DecodeImage(EncodeImage(c))
			if err != nil {
				fail("snapshot decode: %v", err)
			}
			c = snap
		}
		nc, dc, ec := Apply(c, index, wire)
		if !bytes.Equal(EncodeImage(a), prevEnc) {
			fail("Apply modified its input image")
		}
		if errClass(ea) != errClass(eb) || errClass(ea) != errClass(ec) {
			fail("errors differ: %v / %v / %v", ea, eb, ec)
		}
		if strings.HasPrefix(errClass(ea), "unclassified") {
			fail("unclassified error %v", ea)
		}
		outcomes[cmd.Type().String()+" "+errClass(ea)]++
		for _, r := range da.Rejected {
			outcomes["item "+errClass(r.Err)]++
		}
		if !reflect.DeepEqual(da, db) || !reflect.DeepEqual(da, dc) {
			fail("deltas differ:\n%+v\n%+v\n%+v", da, db, dc)
		}
		ba, bb, bc := EncodeImage(na), EncodeImage(nb), EncodeImage(nc)
		if !bytes.Equal(ba, bb) || !bytes.Equal(ba, bc) || !na.Equal(nb) || !na.Equal(nc) {
			fail("images differ")
		}
		checkInvariants(t, na)
		checkDelta(t, fail, a, na, da)
		if ap, ok := cmd.(AlterPartition); ok {
			checkAlter(fail, ap, a, na, da, ea)
		} else if len(da.Rejected) > 0 {
			fail("%v rejected items: %v", cmd.Type(), da.Rejected)
		}
		if ea == nil && da.Changed() {
			applied++
		}
		a, b, c = na, nb, nc
	}
	var parts int
	for _, top := range a.Topics() {
		parts += len(top.Partitions)
	}
	t.Logf("seed %d: %d topics, %d partitions, %d brokers; outcomes %v", seed, len(a.Topics()), parts, len(a.Brokers()), outcomes)
	if applied < steps/4 {
		t.Fatalf("seed %d: only %d of %d commands applied; generator too hostile", seed, applied, steps)
	}
}

// checkAlter verifies what AlterPartition promises: leaders never move,
// every item is either applied, a no-op or reported, and rejections alone
// leave the image as it was.
func checkAlter(fail func(string, ...any), c AlterPartition, old, cur *Image, d Delta, err error) {
	if err != nil {
		return
	}
	if !d.Changed() && cur != old {
		fail("no change but a new image")
	}
	for _, pc := range d.Partitions {
		if pc.Old == nil || pc.New == nil || pc.New.Leader != c.ProposerID || pc.Old.Leader != pc.New.Leader {
			fail("AlterPartition changed %+v", pc)
		}
	}
	for _, r := range d.Rejected {
		if errClass(r.Err) == "ok" || strings.HasPrefix(errClass(r.Err), "unclassified") {
			fail("rejection %v/%d: %v", r.TopicID, r.Partition, r.Err)
		}
	}
	if n := len(d.Partitions) + len(d.Rejected); n > len(c.Partitions) {
		fail("%d items gave %d changes and rejections", len(c.Partitions), n)
	}
	for _, it := range c.Partitions {
		np, ok := cur.Partition(it.TopicID, it.Partition)
		changed := slices.ContainsFunc(d.Partitions, func(pc PartitionChange) bool { return pc.TopicID == it.TopicID && pc.Partition == it.Partition })
		refused := slices.ContainsFunc(d.Rejected, func(r PartitionRejection) bool { return r.TopicID == it.TopicID && r.Partition == it.Partition })
		if changed || refused {
			continue
		}
		// Neither applied nor refused: it must have restated the ISR.
		same := ok && len(np.ISR) == len(it.ISR)
		for _, m := range it.ISR {
			same = same && slices.Contains(np.ISR, m.ID)
		}
		if !same {
			fail("item %v/%d neither applied nor rejected", it.TopicID, it.Partition)
		}
	}
}

// checkDelta verifies that the delta matches the two images and that
// epochs move as documented.
func checkDelta(t *testing.T, fail func(string, ...any), old, cur *Image, d Delta) {
	t.Helper()
	for _, pc := range d.Partitions {
		op, hadOld := old.Partition(pc.TopicID, pc.Partition)
		np, hasNew := cur.Partition(pc.TopicID, pc.Partition)
		if hadOld != (pc.Old != nil) || hasNew != (pc.New != nil) {
			fail("delta %+v disagrees with images on existence", pc)
		}
		if hadOld && !partitionEqual(op, *pc.Old) || hasNew && !partitionEqual(np, *pc.New) {
			fail("delta %+v disagrees with images", pc)
		}
		if hadOld && hasNew {
			if np.PartitionEpoch != op.PartitionEpoch+1 {
				fail("partition epoch %d -> %d", op.PartitionEpoch, np.PartitionEpoch)
			}
			if (np.Leader != op.Leader) != (np.LeaderEpoch == op.LeaderEpoch+1) || np.LeaderEpoch < op.LeaderEpoch {
				fail("leader %d->%d but leader epoch %d->%d", op.Leader, np.Leader, op.LeaderEpoch, np.LeaderEpoch)
			}
		}
	}
	// Partitions absent from the delta are unchanged.
	inDelta := map[partKey]bool{}
	for _, pc := range d.Partitions {
		inDelta[partKey{pc.TopicID, pc.Partition}] = true
	}
	for _, top := range cur.Topics() {
		for p, np := range top.Partitions {
			if inDelta[partKey{top.ID, int32(p)}] {
				continue
			}
			if op, ok := old.Partition(top.ID, int32(p)); !ok || !partitionEqual(op, np) {
				fail("%s/%d changed without a delta entry", top.Name, p)
			}
		}
	}
}
