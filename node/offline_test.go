package node

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/segment"
)

// failFS fails writes, syncs and truncations of files whose path contains dir once armed: a disk
// that went bad under one partition.
type failFS struct {
	segment.FS
	dir   string
	armed atomic.Bool
}

func (f *failFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.Contains(name, f.dir) {
		return file, err
	}
	return failFile{File: file, fs: f, name: name}, nil
}

type failFile struct {
	segment.File
	fs   *failFS
	name string
}

func (f failFile) eio(op string) error {
	if f.fs.armed.Load() {
		return &os.PathError{Op: op, Path: f.name, Err: syscall.EIO}
	}
	return nil
}

func (f failFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.eio("write"); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f failFile) Sync() error {
	if err := f.eio("sync"); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f failFile) Truncate(size int64) error {
	if err := f.eio("truncate"); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// TestReplicaOfflineOnDiskError: an I/O error on a partition leader's files takes that replica
// offline: leadership and ISR membership move to the other replicas, acknowledged records survive,
// the broker reports it and keeps serving its other partitions.
func TestReplicaOfflineOnDiskError(t *testing.T) {
	c := newTestCluster(t, 3)
	faults := map[int32]*failFS{}
	for id := int32(1); id <= 3; id++ {
		cfg := c.config(id)
		faults[id] = &failFS{FS: segment.OSFS(), dir: string(os.PathSeparator) + "d-0" + string(os.PathSeparator)}
		cfg.Log.FS = faults[id]
		if _, err := c.tryStart(cfg); err != nil {
			t.Fatal(err)
		}
	}
	c.allReady(30 * time.Second)
	c.createTopic(c.node(1), "d", 1, 3)
	c.createTopic(c.node(1), "ok", 3, 3)
	c.sameMetadata("d", 10*time.Second)
	acked := produceAll(t, c.node(1), "d", []string{"a0", "a1", "a2", "a3", "a4"})
	bad := c.leaderOf("d", 0)
	if bad == nil {
		t.Fatal("no leader for d-0")
	}
	faults[bad.cfg.NodeID].armed.Store(true)
	acked = append(acked, produceAll(t, c.node(1), "d", []string{"b0", "b1", "b2", "b3", "b4"})...)

	c.eventually(30*time.Second, "d-0 led elsewhere, without the failed replica in its ISR", func() bool {
		st, ok := imagePartition(bad, "d", 0)
		return ok && st.Leader >= 0 && st.Leader != bad.cfg.NodeID && !slices.Contains(st.ISR, bad.cfg.NodeID)
	})
	if got := consumeCluster(t, c.node(1), "d", len(acked)); !slices.Equal(got, acked) {
		t.Fatalf("read %v, acknowledged %v", got, acked)
	}
	st := bad.ClusterStatus()
	if len(st.OfflineReplicas) != 1 || st.OfflineReplicas[0].Topic != "d" {
		t.Fatalf("node %d reports offline replicas %+v", bad.cfg.NodeID, st.OfflineReplicas)
	}
	if v := counterValue(t, bad, "sluice_offline_replicas", nil); v != 1 {
		t.Fatalf("sluice_offline_replicas = %v", v)
	}
	// The broker itself is fine: registered, unfenced, and serving the partitions it leads.
	if !bad.caughtUp() {
		t.Fatalf("node %d is not ready after one replica's disk error", bad.cfg.NodeID)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bad.Addrs().ClientPlain), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for p := int32(0); p < 3; p++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ok", Partition: p, Value: []byte("still-serving")}).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce to ok-%d: %v", p, err)
		}
	}
}
