package raftlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/raftlog/wal"
)

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	id, created, err := LoadOrCreateIdentity(dir, "c1", 3, bytes.NewReader(bytes.Repeat([]byte{7}, 16)))
	if err != nil || !created || id.Incarnation != [16]byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7} {
		t.Fatalf("create: %+v %v %v", id, created, err)
	}
	again, created, err := LoadOrCreateIdentity(dir, "c1", 3, nil)
	if err != nil || created || again != id {
		t.Fatalf("reload: %+v %v %v", again, created, err)
	}
	if _, _, err := LoadOrCreateIdentity(dir, "c2", 3, nil); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("other cluster: %v", err)
	}
	if _, _, err := LoadOrCreateIdentity(dir, "c1", 4, nil); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("other node: %v", err)
	}
	path := filepath.Join(dir, IdentityFile)
	b, _ := os.ReadFile(path)
	b[len(b)-2] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateIdentity(dir, "c1", 3, nil); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
	// A wiped directory gets a new incarnation.
	fresh, created, err := LoadOrCreateIdentity(t.TempDir(), "c1", 3, nil)
	if err != nil || !created || fresh.Incarnation == id.Incarnation {
		t.Fatalf("fresh: %+v %v %v", fresh, created, err)
	}
}
