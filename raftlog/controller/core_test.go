package controller

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// Hand-made images: commands applied with meta.Apply at successive indexes.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	timeout    = 6 * time.Second
	lease      = 500 * time.Millisecond
	leaseGrace = 250 * time.Millisecond
)

func apply(t testing.TB, img *meta.Image, cmds ...meta.Command) *meta.Image {
	t.Helper()
	for _, c := range cmds {
		next, _, err := meta.Apply(img, img.Index()+1, c)
		if err != nil {
			t.Fatalf("apply %v %+v: %v", c.Type(), c, err)
		}
		img = next
	}
	return img
}

func reg(id int32) meta.RegisterBroker {
	return meta.RegisterBroker{NodeID: id, ClusterID: "c", Incarnation: [16]byte{byte(id), 1},
		Addresses: meta.Addresses{Internal: fmt.Sprintf("127.0.0.1:%d", 9000+id)}}
}

// brokers registers and unfences brokers 1..n.
func brokers(t testing.TB, n int32) *meta.Image {
	img := &meta.Image{}
	for id := int32(1); id <= n; id++ {
		img = apply(t, img, reg(id))
		b, _ := img.Broker(id)
		img = apply(t, img, meta.UnfenceBroker{NodeID: id, BrokerEpoch: b.Epoch})
	}
	return img
}

func topicID(i byte) meta.TopicID { return meta.TopicID{0xC0, i, 15: 1} }

func topic(i byte, configs map[string]string, parts ...[]int32) meta.CreateTopic {
	return meta.CreateTopic{Name: fmt.Sprintf("t%d", i), TopicID: topicID(i), Partitions: parts, Configs: configs}
}

func epoch(img *meta.Image, id int32) int64 {
	b, _ := img.Broker(id)
	return b.Epoch
}

func part(t *testing.T, img *meta.Image, i byte, p int32) meta.Partition {
	t.Helper()
	pt, ok := img.Partition(topicID(i), p)
	if !ok {
		t.Fatalf("no partition t%d/%d", i, p)
	}
	return pt
}

// setPartition forces a partition's leader and ISR.
func setPartition(t *testing.T, img *meta.Image, i byte, p int32, leader int32, isr ...int32) *meta.Image {
	cur := part(t, img, i, p)
	return apply(t, img, meta.ChangePartition{TopicID: topicID(i), Partition: p, Leader: leader, ISR: isr,
		LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch})
}

func fenced(cmds []meta.Command) []int32 {
	var out []int32
	for _, c := range cmds {
		if f, ok := c.(meta.FenceBroker); ok {
			out = append(out, f.NodeID)
		}
	}
	return out
}

func newCore(mut func(*Config)) *Core {
	cfg := DefaultConfig()
	cfg.SessionTimeout = timeout
	cfg.Lease, cfg.LeaseGrace = lease, leaseGrace
	cfg.PreferredLeaderInterval = 0
	if mut != nil {
		mut(&cfg)
	}
	return NewCore(cfg)
}

func TestCoreSessions(t *testing.T) {
	img := apply(t, brokers(t, 3), topic(1, nil, []int32{1, 2, 3}))
	type event struct {
		at    time.Duration
		node  int32
		dead  bool  // gossip MemberDead instead of a heartbeat
		stale int64 // heartbeat epoch offset (0: current)
		late  bool  // the heartbeat comes after the session ran out: refused as fenced
	}
	cases := []struct {
		name   string
		events []event
		tick   time.Duration
		want   []int32 // fenced by the tick
	}{
		{"fresh sessions just before expiry", nil, timeout - time.Nanosecond, nil},
		{"expiry fences exactly at SessionTimeout", []event{{at: time.Second, node: 2}, {at: time.Second, node: 3}},
			timeout, []int32{1}},
		{"heartbeat renews", []event{{at: 5 * time.Second, node: 1}, {at: 5 * time.Second, node: 2}, {at: 5 * time.Second, node: 3}},
			timeout + 5*time.Second - time.Nanosecond, nil},
		{"renewed session expires a timeout after the beat", []event{{at: 5 * time.Second, node: 1}},
			timeout + 5*time.Second, []int32{1, 2, 3}},
		{"member dead shortens the session", []event{{at: time.Second, node: 2, dead: true}}, time.Second, []int32{2}},
		{"member dead waits for the lease a heartbeat granted", []event{{at: time.Second, node: 2}, {at: 1100 * time.Millisecond, node: 2, dead: true}},
			time.Second + lease - time.Nanosecond, nil},
		{"member dead fences when the granted lease ends", []event{{at: time.Second, node: 2}, {at: 1100 * time.Millisecond, node: 2, dead: true}},
			time.Second + lease, []int32{2}},
		{"member dead waits for leases an earlier controller granted", []event{{at: 100 * time.Millisecond, node: 2, dead: true}},
			lease + leaseGrace - time.Nanosecond, nil},
		{"member dead fences after the takeover grace", []event{{at: 100 * time.Millisecond, node: 2, dead: true}},
			lease + leaseGrace, []int32{2}},
		{"heartbeat within the lease after a dead verdict revives", []event{{at: time.Second, node: 2},
			{at: 1200 * time.Millisecond, node: 2, dead: true}, {at: 1400 * time.Millisecond, node: 2}}, 3 * time.Second, nil},
		{"heartbeat after the session ran out does not revive", []event{{at: time.Second, node: 2, dead: true},
			{at: 2 * time.Second, node: 2, late: true}}, 3 * time.Second, []int32{2}},
		{"stale epoch heartbeat does not renew", []event{{at: 5 * time.Second, node: 1, stale: -1}, {at: 5 * time.Second, node: 2},
			{at: 5 * time.Second, node: 3}}, timeout, []int32{1}},
		{"newer epoch heartbeat does not renew", []event{{at: 5 * time.Second, node: 1, stale: 100}, {at: 5 * time.Second, node: 2},
			{at: 5 * time.Second, node: 3}}, timeout, []int32{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(nil)
			c.BecameLeader(t0, img)
			for _, ev := range tc.events {
				if ev.dead {
					c.MemberDead(t0.Add(ev.at), ev.node)
					continue
				}
				reply, cmds := c.Heartbeat(t0.Add(ev.at), img, Heartbeat{NodeID: ev.node, BrokerEpoch: epoch(img, ev.node) + ev.stale,
					MetadataOffset: img.Index()})
				if len(cmds) != 0 {
					t.Fatalf("heartbeat of an unfenced broker proposed %v", cmds)
				}
				want := HeartbeatReply{MetadataOffset: img.Index(), Lease: lease}
				if ev.late {
					want = HeartbeatReply{Fenced: true, MetadataOffset: img.Index()}
				}
				if ev.stale != 0 {
					want = HeartbeatReply{ErrorCode: wire.CodeStaleBrokerEpoch, Fenced: true}
				}
				if reply != want {
					t.Fatalf("heartbeat reply %+v, want %+v", reply, want)
				}
			}
			cmds := c.Tick(t0.Add(tc.tick), img)
			if got := fenced(cmds); !slices.Equal(got, tc.want) {
				t.Fatalf("fenced %v, want %v (commands %v)", got, tc.want, cmds)
			}
			for _, cmd := range cmds {
				if f, ok := cmd.(meta.FenceBroker); ok && f.BrokerEpoch != epoch(img, f.NodeID) {
					t.Fatalf("fence %+v carries a wrong epoch", f)
				}
			}
		})
	}
}

func TestCoreFenceMovesLeadersOnce(t *testing.T) {
	img := apply(t, brokers(t, 3), topic(1, nil, []int32{1, 2, 3}, []int32{2, 3, 1}, []int32{1, 3, 2}))
	c := newCore(nil)
	c.BecameLeader(t0, img)
	c.MemberDead(t0.Add(time.Second), 1)
	cmds := c.Tick(t0.Add(time.Second), img)
	if len(cmds) != 1 || !slices.Equal(fenced(cmds), []int32{1}) {
		t.Fatalf("tick = %v, want FenceBroker(1) alone: meta.Apply's fence sweep moves the leaders", cmds)
	}
	before := img
	img = apply(t, img, cmds...)
	for p, want := range map[int32]int32{0: 2, 1: 2, 2: 3} {
		got, old := part(t, img, 1, p), part(t, before, 1, p)
		if got.Leader != want || slices.Contains(got.ISR, 1) {
			t.Fatalf("p%d = %+v, want leader %d and 1 out of the ISR", p, got, want)
		}
		if (old.Leader == 1) != (got.LeaderEpoch == old.LeaderEpoch+1) {
			t.Fatalf("p%d leader epoch %d -> %d", p, old.LeaderEpoch, got.LeaderEpoch)
		}
	}
	if cmds := c.Tick(t0.Add(2*time.Second), img); len(cmds) != 0 {
		t.Fatalf("second tick proposes %v", cmds)
	}
}

func TestCoreLeaderlessElection(t *testing.T) {
	base := brokers(t, 3)
	cases := []struct {
		name    string
		configs map[string]string
		unclean func(meta.TopicID) bool
		isr     []int32
		fence   []int32 // brokers fenced before the tick
		expire  []int32 // brokers whose session ends (MemberDead) at the tick
		beat    []int32 // brokers that heartbeat just before the tick (a lease running)
		leader  int32   // wanted leader after the tick (NoLeader: stays offline)
		wantISR []int32
	}{
		{name: "leaderless with live ISR member", isr: []int32{2, 3}, leader: 2, wantISR: []int32{2, 3}},
		{name: "expired ISR member is skipped", isr: []int32{2, 3}, expire: []int32{2}, leader: 3, wantISR: []int32{3}},
		{name: "dead ISR member in its lease is neither chosen nor fenced", isr: []int32{2, 3}, beat: []int32{2}, expire: []int32{2},
			leader: 3, wantISR: []int32{2, 3}},
		{name: "no live ISR member stays offline", isr: []int32{1}, fence: []int32{1}, leader: meta.NoLeader, wantISR: []int32{1}},
		{name: "unclean via topic config", configs: map[string]string{UncleanConfig: "true"}, isr: []int32{1}, fence: []int32{1},
			leader: 2, wantISR: []int32{2}},
		{name: "unclean config false", configs: map[string]string{UncleanConfig: "false"}, isr: []int32{1}, fence: []int32{1},
			leader: meta.NoLeader, wantISR: []int32{1}},
		{name: "unclean via Config func", unclean: func(id meta.TopicID) bool { return id == topicID(1) }, isr: []int32{1},
			fence: []int32{1, 2}, leader: 3, wantISR: []int32{3}},
		{name: "unclean with no live replica", configs: map[string]string{UncleanConfig: "true"}, isr: []int32{1},
			fence: []int32{1, 2, 3}, leader: meta.NoLeader, wantISR: []int32{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := apply(t, base, topic(1, tc.configs, []int32{1, 2, 3}))
			img = setPartition(t, img, 1, 0, meta.NoLeader, tc.isr...)
			for _, id := range tc.fence {
				img = apply(t, img, meta.FenceBroker{NodeID: id, BrokerEpoch: epoch(img, id)})
			}
			before := part(t, img, 1, 0)
			if before.Leader != meta.NoLeader {
				t.Fatalf("setup: leader %d", before.Leader)
			}
			c := newCore(func(cfg *Config) { cfg.UncleanElection = tc.unclean })
			c.BecameLeader(t0, img)
			now := t0.Add(time.Second)
			for _, id := range tc.beat {
				c.Heartbeat(now.Add(-lease/5), img, Heartbeat{NodeID: id, BrokerEpoch: epoch(img, id), MetadataOffset: img.Index()})
			}
			for _, id := range tc.expire {
				c.MemberDead(now, id)
			}
			// Two Ticks, each from the committed image: a partition a fence changes is elected for at
			// the next one (a batch never builds on epochs it only predicts).
			for range 2 {
				cmds := c.Tick(now, img)
				for _, id := range tc.beat {
					if slices.Contains(fenced(cmds), id) {
						t.Fatalf("broker %d fenced inside its lease: %v", id, cmds)
					}
				}
				img = apply(t, img, cmds...)
			}
			got := part(t, img, 1, 0)
			if got.Leader != tc.leader || !slices.Equal(got.ISR, tc.wantISR) {
				t.Fatalf("after tick: leader %d ISR %v, want %d %v", got.Leader, got.ISR, tc.leader, tc.wantISR)
			}
			if tc.leader != meta.NoLeader && got.LeaderEpoch <= before.LeaderEpoch {
				t.Fatalf("leader epoch %d not bumped from %d", got.LeaderEpoch, before.LeaderEpoch)
			}
			if cmds := c.Tick(now.Add(time.Millisecond), img); len(fenced(cmds)) != len(cmds) {
				t.Fatalf("next tick proposes partition changes again: %v", cmds)
			}
		})
	}
}

func TestCorePreferredLeader(t *testing.T) {
	base := apply(t, brokers(t, 3), topic(1, nil, []int32{1, 2, 3}))
	moved := setPartition(t, base, 1, 0, 2, 1, 2, 3) // leader 2, preferred 1 in the ISR
	notInISR := setPartition(t, base, 1, 0, 2, 2, 3)
	cases := []struct {
		name     string
		img      *meta.Image
		interval time.Duration
		prep     func(c *Core, img *meta.Image)
		want     int32
	}{
		{"moves back to the first replica", moved, time.Second, nil, 1},
		{"off when interval is zero", moved, 0, nil, 2},
		{"preferred not in ISR", notInISR, time.Second, nil, 2},
		{"preferred expired", moved, time.Second, func(c *Core, _ *meta.Image) { c.MemberDead(t0, 1) }, 2},
		{"preferred shutting down", moved, time.Second, func(c *Core, img *meta.Image) {
			if _, err := c.ControlledShutdown(t0, img, 1, epoch(img, 1)); err != nil {
				t.Fatal(err)
			}
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(func(cfg *Config) { cfg.PreferredLeaderInterval = tc.interval })
			c.BecameLeader(t0, tc.img)
			if tc.prep != nil {
				tc.prep(c, tc.img)
			}
			for _, cmd := range c.Tick(t0.Add(tc.interval-time.Nanosecond), tc.img) {
				if cp, ok := cmd.(meta.ChangePartition); ok && tc.interval > 0 && cp.Leader == 1 {
					t.Fatalf("tick before the interval proposes %v", cmd)
				}
			}
			img := tc.img
			for _, cmd := range c.Tick(t0.Add(tc.interval), img) {
				if _, ok := cmd.(meta.ChangePartition); ok {
					img = apply(t, img, cmd)
				}
			}
			got := part(t, img, 1, 0)
			if got.Leader != tc.want {
				t.Fatalf("leader %d, want %d", got.Leader, tc.want)
			}
			if tc.want != 2 && (got.LeaderEpoch != part(t, tc.img, 1, 0).LeaderEpoch+1 || !slices.Equal(got.ISR, []int32{1, 2, 3})) {
				t.Fatalf("preferred move changed more than the leader: %+v", got)
			}
		})
	}
}

func TestCoreControlledShutdown(t *testing.T) {
	img := apply(t, brokers(t, 3),
		topic(1, nil, []int32{1, 2, 3}, []int32{2, 1, 3}, []int32{3, 1, 2}),
		topic(2, nil, []int32{1}))
	c := newCore(func(cfg *Config) { cfg.PreferredLeaderInterval = time.Millisecond })
	c.BecameLeader(t0, img)
	now := t0.Add(time.Second)
	if _, err := c.ControlledShutdown(now, img, 1, epoch(img, 1)-1); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.ControlledShutdown(now, img, 9, 1); !errors.Is(err, ErrUnknownBroker) {
		t.Fatalf("unknown broker: %v", err)
	}
	cmds, err := c.ControlledShutdown(now, img, 1, epoch(img, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 {
		t.Fatalf("commands %v, want three ChangePartitions", cmds)
	}
	img = apply(t, img, cmds...)
	for _, w := range []struct {
		p      int32
		leader int32
		isr    []int32
	}{{0, 2, []int32{2, 3}}, {1, 2, []int32{2, 3}}, {2, 3, []int32{3, 2}}} {
		if got := part(t, img, 1, w.p); got.Leader != w.leader || !slices.Equal(got.ISR, w.isr) {
			t.Fatalf("t1/%d = leader %d ISR %v, want %d %v", w.p, got.Leader, got.ISR, w.leader, w.isr)
		}
	}
	if got := part(t, img, 2, 0); got.Leader != 1 {
		t.Fatalf("sole replica partition lost its leader: %+v", got)
	}
	if cmds, err := c.ControlledShutdown(now, img, 1, epoch(img, 1)); err != nil || len(cmds) != 0 {
		t.Fatalf("second call = %v, %v; want nothing left to move", cmds, err)
	}
	reply, cmds := c.Heartbeat(now, img, Heartbeat{NodeID: 1, BrokerEpoch: epoch(img, 1), WantFence: true, MetadataOffset: img.Index()})
	if !reply.ShouldShutdown || reply.Fenced || len(cmds) != 0 {
		t.Fatalf("heartbeat in shutdown = %+v %v", reply, cmds)
	}
	// The preferred-leader pass must not hand leadership back.
	if cmds := c.Tick(now.Add(time.Second), img); len(cmds) != 0 {
		t.Fatalf("tick during shutdown proposes %v", cmds)
	}
	// Once the broker stops, its session ends and it is fenced.
	for _, id := range []int32{2, 3} {
		c.Heartbeat(now.Add(time.Second), img, Heartbeat{NodeID: id, BrokerEpoch: epoch(img, id), MetadataOffset: img.Index()})
	}
	cmds = c.Tick(now.Add(timeout), img)
	if !slices.Equal(fenced(cmds), []int32{1}) {
		t.Fatalf("after shutdown: %v", cmds)
	}
}

func TestCoreHeartbeatShutdownMovesLeadership(t *testing.T) {
	img := apply(t, brokers(t, 2), topic(1, nil, []int32{1, 2}))
	c := newCore(nil)
	c.BecameLeader(t0, img)
	reply, cmds := c.Heartbeat(t0, img, Heartbeat{NodeID: 1, BrokerEpoch: epoch(img, 1), WantFence: true, MetadataOffset: img.Index()})
	if !reply.ShouldShutdown || len(cmds) != 1 {
		t.Fatalf("reply %+v cmds %v", reply, cmds)
	}
	img = apply(t, img, cmds...)
	if got := part(t, img, 1, 0); got.Leader != 2 || !slices.Equal(got.ISR, []int32{2}) {
		t.Fatalf("partition %+v", got)
	}
}

func TestCoreUnfence(t *testing.T) {
	img := apply(t, brokers(t, 1), reg(2))
	e := epoch(img, 2)
	cases := []struct {
		name   string
		hb     Heartbeat
		unfenc bool
	}{
		{"behind its registration", Heartbeat{NodeID: 2, BrokerEpoch: e, MetadataOffset: uint64(e) - 1}, false},
		{"caught up", Heartbeat{NodeID: 2, BrokerEpoch: e, MetadataOffset: uint64(e)}, true},
		{"caught up but shutting down", Heartbeat{NodeID: 2, BrokerEpoch: e, MetadataOffset: uint64(e), WantFence: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(nil)
			c.BecameLeader(t0, img)
			reply, cmds := c.Heartbeat(t0, img, tc.hb)
			want := []meta.Command(nil)
			if tc.unfenc {
				want = []meta.Command{meta.UnfenceBroker{NodeID: 2, BrokerEpoch: e}}
			}
			if !slices.EqualFunc(cmds, want, func(a, b meta.Command) bool { return a == b }) || reply.Fenced == tc.unfenc {
				t.Fatalf("reply %+v cmds %v, want unfence %v", reply, cmds, tc.unfenc)
			}
			// Tick repeats a lost unfence, and only while it is pending.
			if got := c.Tick(t0.Add(time.Millisecond), img); len(got) != len(want) {
				t.Fatalf("tick %v, want %v", got, want)
			}
			if tc.unfenc {
				if got := c.Tick(t0.Add(time.Millisecond), apply(t, img, want...)); len(got) != 0 {
					t.Fatalf("tick after unfence: %v", got)
				}
			}
		})
	}
	c := newCore(nil)
	if reply, _ := c.Heartbeat(t0, img, Heartbeat{NodeID: 7, BrokerEpoch: 1}); reply.ErrorCode != wire.CodeBrokerIDNotRegistered {
		t.Fatalf("unknown broker reply %+v", reply)
	}
}

func TestCoreBecameLeaderGrace(t *testing.T) {
	img := apply(t, brokers(t, 3), topic(1, nil, []int32{1, 2, 3}))
	c := newCore(nil)
	// As an earlier controller: sessions long expired and a dead verdict.
	c.BecameLeader(t0, img)
	c.MemberDead(t0, 2)
	later := t0.Add(time.Hour)
	c.BecameLeader(later, img)
	if cmds := c.Tick(later.Add(timeout-time.Nanosecond), img); len(cmds) != 0 {
		t.Fatalf("new controller fences within the grace period: %v", cmds)
	}
	if got := fenced(c.Tick(later.Add(timeout), img)); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("after the grace period fenced %v", got)
	}
	// A broker registered after BecameLeader gets its own fresh session.
	img2 := apply(t, img, reg(4))
	img2 = apply(t, img2, meta.UnfenceBroker{NodeID: 4, BrokerEpoch: epoch(img2, 4)})
	c.BecameLeader(t0, img)
	if got := fenced(c.Tick(t0.Add(timeout-time.Second), img2)); len(got) != 0 {
		t.Fatalf("fenced %v", got)
	}
	if got := fenced(c.Tick(t0.Add(2*timeout-time.Second), img2)); !slices.Equal(got, []int32{1, 2, 3, 4}) {
		t.Fatalf("fenced %v, want all four", got)
	}
}

// TestCoreFilterAlterPartition checks the controller's KIP-841 rule: no
// broker in controlled shutdown or without a live session joins an ISR,
// while members staying in it and everything meta.Apply judges pass.
func TestCoreFilterAlterPartition(t *testing.T) {
	reps := []int32{1, 2, 3, 4}
	img := apply(t, brokers(t, 4), topic(1, nil, reps, reps, reps, reps, reps))
	for p := range int32(3) {
		img = setPartition(t, img, 1, p, 1, 1)
	}
	c := newCore(nil)
	c.BecameLeader(t0, img)
	now := t0.Add(time.Second)
	if _, err := c.ControlledShutdown(now, img, 2, epoch(img, 2)); err != nil { // its moves are not applied here
		t.Fatal(err)
	}
	c.MemberDead(now, 3)
	item := func(p int32, isr ...int32) meta.AlterPartitionItem {
		cur := part(t, img, 1, p)
		it := meta.AlterPartitionItem{TopicID: topicID(1), Partition: p, LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch}
		for _, id := range isr {
			it.ISR = append(it.ISR, meta.ISRMember{ID: id, BrokerEpoch: epoch(img, id)})
		}
		return it
	}
	stale := item(4, 1, 2)
	stale.PartitionEpoch--
	unknown := item(0, 1)
	unknown.TopicID = topicID(9)
	cmd := meta.AlterPartition{ProposerID: 1, ProposerEpoch: epoch(img, 1), Partitions: []meta.AlterPartitionItem{
		item(0, 1, 4),    // adds a live broker
		item(1, 1, 2),    // adds a broker in controlled shutdown
		item(2, 3, 1),    // adds a broker whose session gossip ended
		item(3, 1, 2, 3), // shrinks: 2 and 3 stay
		stale,            // judged against other epochs: 2 counts as added
		unknown,          // left to meta.Apply
	}}
	out, dropped := c.FilterAlterPartition(now, img, cmd)
	if out.ProposerID != 1 || out.ProposerEpoch != cmd.ProposerEpoch {
		t.Fatalf("filtered command %+v", out)
	}
	var kept []int32
	for _, it := range out.Partitions {
		kept = append(kept, it.Partition)
	}
	if !slices.Equal(kept, []int32{0, 3, 0}) || out.Partitions[2].TopicID != topicID(9) {
		t.Fatalf("kept %v", out.Partitions)
	}
	var gone []int32
	for _, d := range dropped {
		if !errors.Is(d.Err, meta.ErrIneligibleReplica) || d.TopicID != topicID(1) {
			t.Fatalf("dropped %v/%d: %v", d.TopicID, d.Partition, d.Err)
		}
		gone = append(gone, d.Partition)
	}
	if !slices.Equal(gone, []int32{1, 2, 4}) {
		t.Fatalf("dropped %v, want partitions 1, 2 and 4", gone)
	}
	next, d, err := meta.Apply(img, img.Index()+1, out)
	if err != nil || len(d.Rejected) != 1 || !errors.Is(d.Rejected[0].Err, meta.ErrUnknownTopic) {
		t.Fatalf("Apply(filtered) = %+v, %v", d, err)
	}
	if got := part(t, next, 1, 0); !slices.Equal(got.ISR, []int32{1, 4}) {
		t.Fatalf("t1/0 ISR %v", got.ISR)
	}
	if got := part(t, next, 1, 3); !slices.Equal(got.ISR, []int32{1, 2, 3}) {
		t.Fatalf("t1/3 ISR %v", got.ISR)
	}
	// Without heartbeats every session runs out: nobody joins.
	if out, dropped := c.FilterAlterPartition(t0.Add(timeout), img, meta.AlterPartition{ProposerID: 1,
		Partitions: []meta.AlterPartitionItem{item(0, 1, 4)}}); len(out.Partitions) != 0 || len(dropped) != 1 {
		t.Fatalf("after expiry kept %v, dropped %v", out.Partitions, dropped)
	}
}

// A broker reports a replica offline (its log failed): the replica leaves the ISR and leadership,
// is not elected or let back into the ISR while the registration lasts, and a partition whose only
// ISR member failed goes offline instead of keeping a leader that cannot serve.
func TestCoreReplicasOffline(t *testing.T) {
	img := apply(t, brokers(t, 3),
		topic(1, nil, []int32{1, 2, 3}, []int32{2, 1, 3}),
		topic(2, nil, []int32{1}))
	c := newCore(func(cfg *Config) { cfg.PreferredLeaderInterval = time.Millisecond })
	c.BecameLeader(t0, img)
	now := t0.Add(time.Second)
	if _, err := c.ReplicasOffline(now, img, 1, epoch(img, 1)-1, nil); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	refs := []PartitionRef{{topicID(1), 0}, {topicID(1), 1}, {topicID(2), 0}}
	cmds, err := c.ReplicasOffline(now, img, 1, epoch(img, 1), refs)
	if err != nil || len(cmds) != 3 {
		t.Fatalf("ReplicasOffline = %v, %v; want three ChangePartitions", cmds, err)
	}
	img = apply(t, img, cmds...)
	if got := part(t, img, 1, 0); got.Leader != 2 || !slices.Equal(got.ISR, []int32{2, 3}) {
		t.Fatalf("led partition: %+v, want leader 2 ISR [2 3]", got)
	}
	if got := part(t, img, 1, 1); got.Leader != 2 || !slices.Equal(got.ISR, []int32{2, 3}) {
		t.Fatalf("followed partition: %+v, want leader 2 ISR [2 3]", got)
	}
	if got := part(t, img, 2, 0); got.Leader != meta.NoLeader || !slices.Equal(got.ISR, []int32{1}) {
		t.Fatalf("sole replica: %+v, want no leader and ISR [1]", got)
	}
	// Neither Tick's election nor the preferred-leader pass picks the failed replica.
	for _, cmd := range c.Tick(now.Add(time.Second), img) {
		if cp, ok := cmd.(meta.ChangePartition); ok && cp.Leader == 1 {
			t.Fatalf("tick elects the offline replica: %+v", cp)
		}
	}
	// A leader may not add it back to the ISR.
	cur := part(t, img, 1, 0)
	alter := meta.AlterPartition{ProposerID: 2, ProposerEpoch: epoch(img, 2), Partitions: []meta.AlterPartitionItem{{
		TopicID: topicID(1), Partition: 0, LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch,
		ISR: []meta.ISRMember{{ID: 1, BrokerEpoch: epoch(img, 1)}, {ID: 2, BrokerEpoch: -1}, {ID: 3, BrokerEpoch: -1}}}}}
	if out, dropped := c.FilterAlterPartition(now, img, alter); len(out.Partitions) != 0 || len(dropped) != 1 {
		t.Fatalf("AlterPartition adding the offline replica: kept %v, dropped %v", out.Partitions, dropped)
	}
	if cmds, err := c.ReplicasOffline(now, img, 1, epoch(img, 1), refs); err != nil || len(cmds) != 0 {
		t.Fatalf("second report = %v, %v; want nothing left to move", cmds, err)
	}
}

// Regression (replica simulator, seed 1203187): a Tick that fences a broker must not also propose a
// partition change whose expected epochs it predicted from the fence. If a leader's AlterPartition
// commits first, the fence is a no-op for that partition, and the predicted epochs would match the
// AlterPartition's result instead: the change would undo an ISR shrink and could elect a replica
// that lacks committed data.
func TestCoreTickNeverPredictsEpochs(t *testing.T) {
	img := apply(t, brokers(t, 3), topic(1, nil, []int32{1, 2, 3}))
	img = setPartition(t, img, 1, 0, 2, 1, 2, 3) // led by 2, not by its preferred replica 1
	c := newCore(func(cfg *Config) { cfg.PreferredLeaderInterval = time.Millisecond })
	c.BecameLeader(t0, img)
	for _, id := range []int32{1, 2} { // 1 and 2 stay live; 3 goes silent
		c.Heartbeat(t0.Add(timeout/2), img, Heartbeat{NodeID: id, BrokerEpoch: epoch(img, id), MetadataOffset: img.Index()})
	}
	cmds := c.Tick(t0.Add(timeout+time.Millisecond), img)
	if !slices.Equal(fenced(cmds), []int32{3}) {
		t.Fatalf("setup: Tick = %v, want broker 3 fenced", cmds)
	}
	cur := part(t, img, 1, 0)
	for _, cmd := range cmds {
		if cp, ok := cmd.(meta.ChangePartition); ok && (cp.LeaderEpoch != cur.LeaderEpoch || cp.PartitionEpoch != cur.PartitionEpoch) {
			t.Fatalf("Tick proposes %+v against predicted epochs; committed are %d/%d", cp, cur.LeaderEpoch, cur.PartitionEpoch)
		}
	}
	// The move to the preferred leader comes with the next Tick, from the committed image.
	img = apply(t, img, cmds...)
	img = apply(t, img, c.Tick(t0.Add(timeout+time.Second), img)...)
	if got := part(t, img, 1, 0); got.Leader != 1 || !slices.Equal(got.ISR, []int32{1, 2}) {
		t.Fatalf("after the next Tick: %+v, want leader 1 ISR [1 2]", got)
	}
}
