package raftlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluice-io/sluice/internal/fsutil"
	"github.com/sluice-io/sluice/raftlog/wal"
)

// IdentityFile is the name of the identity file in a node's data directory.
const IdentityFile = "identity"

// Identity ties a data directory to a cluster and node. The Incarnation is
// drawn once, when the directory is first used; it goes into every
// RegisterBroker, so a node whose directory was wiped comes back with a new
// incarnation and cannot silently take over its old registration.
type Identity struct {
	ClusterID   string   `json:"cluster_id"`
	NodeID      int32    `json:"node_id"`
	Incarnation [16]byte `json:"incarnation"`
}

// ReadIdentity returns the identity stored in dir; found is false when dir
// holds none. The file is a WAL-framed (CRC-checked) JSON record; a damaged
// one is wal.ErrCorrupt.
func ReadIdentity(dir string) (id Identity, found bool, err error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Identity{}, false, nil
	case err != nil:
		return Identity{}, false, fmt.Errorf("raftlog: %w", err)
	}
	rec, n, derr := wal.DecodeRecord(b, len(b))
	if derr != nil || n != len(b) || rec.Type != wal.TypeIdentity {
		return Identity{}, false, fmt.Errorf("raftlog: %s: %w", path, errors.Join(wal.ErrCorrupt, derr))
	}
	if err := json.Unmarshal(rec.Data, &id); err != nil {
		return Identity{}, false, fmt.Errorf("raftlog: %s: %w: %w", path, wal.ErrCorrupt, err)
	}
	return id, true, nil
}

// WriteIdentity stores id in dir (created if needed), atomically and durably.
func WriteIdentity(dir string, id Identity) error {
	data, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	return fsutil.WriteFileAtomic(dir, IdentityFile, wal.AppendRecord(nil, wal.Record{Type: wal.TypeIdentity, Data: data}))
}
