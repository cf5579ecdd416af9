package partition

import (
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batchtest"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// gateFS holds every fdatasync of a .log file until the test lets it through.
type gateFS struct {
	segment.FS
	started chan struct{}
	gate    chan struct{}
	syncs   atomic.Int64
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return gateFile{File: f, g: g}, nil
}

type gateFile struct {
	segment.File
	g *gateFS
}

func (f gateFile) Sync() error {
	f.g.syncs.Add(1)
	f.g.started <- struct{}{}
	<-f.g.gate
	return f.File.Sync()
}

// With durability=always, producers to ONE partition share an fdatasync: the
// partition's writer lock is released before the durability wait, so seven
// appends that arrive while the first one's sync runs are written and then
// covered by a single second sync. The high watermark only covers synced data.
func TestProduceGroupCommitOnePartition(t *testing.T) {
	g := &gateFS{FS: segment.OSFS(), started: make(chan struct{}, 64), gate: make(chan struct{})}
	base := segment.DefaultConfig()
	base.FS = g
	base.Durability = segment.DurabilityAlways // sluice.durability=always
	p, err := Open(t.TempDir(), Config{Topic: "gc", Index: 0, NodeID: 1, Log: base, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Lead in epoch 0 with an ISR of one (BecomeLeader would fsync the epoch file through the gate).
	p.core.BecomeLeader(time.Now(), replica.Metadata{Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}, 0)
	p.role.Store(&Role{Leader: true})
	defer func() {
		close(g.gate) // let Close sync freely
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	produce := func(pid int64) {
		defer wg.Done()
		b := batchtest.Build(batchtest.Producer(pid, 0, 0), batchtest.Values("x"))
		c, err := segment.Check(b, segment.DefaultConfig().MaxBatchBytes)
		if err == nil {
			_, err = p.Produce(c)
		}
		if err != nil {
			errs <- err
		}
	}
	wg.Add(1)
	go produce(1)
	<-g.started // the first append's fdatasync is running
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d while the only batch is not yet synced", hw)
	}
	for i := int64(2); i <= 8; i++ {
		wg.Add(1)
		go produce(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.log.LogEndOffset() != 8 {
		if time.Now().After(deadline) {
			t.Fatalf("concurrent producers did not write while a sync ran: LEO %d (writer lock held across the sync?)", p.log.LogEndOffset())
		}
		runtime.Gosched()
	}
	g.gate <- struct{}{} // finish sync 1
	<-g.started          // sync 2 covers the seven that queued
	g.gate <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := g.syncs.Load(); n != 2 {
		t.Fatalf("%d fdatasyncs for 8 appends, want 2", n)
	}
	if hw := p.HighWatermark(); hw != 8 {
		t.Fatalf("HW %d, want 8", hw)
	}
}
