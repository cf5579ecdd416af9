package segment

import (
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateFS blocks every data sync of a .log file until the test lets it
// through, and counts them.
type gateFS struct {
	FS
	started chan struct{}
	gate    chan struct{}
	syncs   atomic.Int64
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return f, err
	}
	return gateFile{File: f, g: g}, nil
}

type gateFile struct {
	File
	g *gateFS
}

func (f gateFile) Sync() error {
	f.g.syncs.Add(1)
	f.g.started <- struct{}{}
	<-f.g.gate
	return f.File.Sync()
}

// Appends that arrive while an fdatasync runs share the next one.
func TestGroupCommitSharesSyncs(t *testing.T) {
	g := &gateFS{FS: OSFS(), started: make(chan struct{}, 16), gate: make(chan struct{})}
	cfg := testConfig()
	cfg.Durability = DurabilityAlways
	cfg.FS = g
	l := openLog(t, t.TempDir(), cfg)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	appendOne := func() {
		defer wg.Done()
		if _, err := l.Append(batch("g", 1), 0); err != nil {
			errs <- err
		}
	}
	wg.Add(1)
	go appendOne()
	<-g.started // the first append's sync is running
	for i := 0; i < 7; i++ {
		wg.Add(1)
		go appendOne()
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.LogEndOffset() != 8 {
		if time.Now().After(deadline) {
			t.Fatalf("appends did not write: LEO %d", l.LogEndOffset())
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
		t.Fatalf("%d syncs for 8 appends, want 2", n)
	}
	close(g.gate) // let Close sync freely (started has room for its few syncs)
}
