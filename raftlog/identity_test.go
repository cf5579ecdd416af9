package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/raftlog/wal"
)

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	if _, found, err := ReadIdentity(dir); err != nil || found {
		t.Fatalf("empty dir: found %v, %v", found, err)
	}
	id := Identity{ClusterID: "c1", NodeID: 3, Incarnation: [16]byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}}
	sub := filepath.Join(dir, "raft")
	if err := WriteIdentity(sub, id); err != nil {
		t.Fatal(err)
	}
	again, found, err := ReadIdentity(sub)
	if err != nil || !found || again != id {
		t.Fatalf("reload: %+v %v %v", again, found, err)
	}
	path := filepath.Join(sub, IdentityFile)
	b, _ := os.ReadFile(path)
	b[len(b)-2] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadIdentity(sub); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
}
