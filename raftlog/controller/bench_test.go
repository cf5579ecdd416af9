package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// BenchmarkCoreTick measures a steady-state Tick (nothing to do) over 200
// topics of 50 partitions (10,000 partitions, rf 3) on 6 brokers, the work
// the controller repeats every TickInterval.
func BenchmarkCoreTick(b *testing.B) {
	img := brokers(b, 6)
	for i := range 200 {
		var parts [][]int32
		for p := range 50 {
			first := int32((i + p) % 6)
			parts = append(parts, []int32{first + 1, (first+1)%6 + 1, (first+2)%6 + 1})
		}
		id := meta.TopicID{0xB0, byte(i), byte(i >> 8), 15: 1}
		next, _, err := meta.Apply(img, img.Index()+1, meta.CreateTopic{Name: fmt.Sprintf("b%d", i), TopicID: id, Partitions: parts})
		if err != nil {
			b.Fatal(err)
		}
		img = next
	}
	c := newCore(func(cfg *Config) { cfg.PreferredLeaderInterval = 1 })
	c.BecameLeader(t0, img)
	now := t0.Add(time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Nanosecond) // the preferred-leader pass runs every time
		if cmds := c.Tick(now, img); len(cmds) != 0 {
			b.Fatalf("steady tick proposes %d commands", len(cmds))
		}
	}
}
