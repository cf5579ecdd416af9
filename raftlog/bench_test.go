package raftlog

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func benchSave(b *testing.B, batch int) {
	st, err := OpenStorage(b.TempDir(), StorageConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	data := make([]byte, 256)
	ents := make([]*raftpb.Entry, batch)
	next := uint64(1)
	b.SetBytes(int64(batch * len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range ents {
			ents[i] = ent(next, 1, "")
			ents[i].Data = data
			next++
		}
		if err := st.Save(hardState(1, 1, next-1), ents, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStorageSave measures one fsynced Save of a single 256-byte entry
// (the latency floor of a metadata commit on this disk).
func BenchmarkStorageSave(b *testing.B) { benchSave(b, 1) }

// BenchmarkStorageSaveBatch64 measures a Save of 64 entries (one fsync).
func BenchmarkStorageSaveBatch64(b *testing.B) { benchSave(b, 64) }
