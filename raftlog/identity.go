package raftlog

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-io/sluice/internal/fsutil"
	"github.com/sluice-io/sluice/raftlog/wal"
)

// IdentityFile is the name of the identity file in a node's data directory.
const IdentityFile = "identity"

// ErrIdentityMismatch reports a data directory that belongs to another
// cluster or node id than the one configured.
var ErrIdentityMismatch = errors.New("raftlog: data directory identity mismatch")

// Identity ties a data directory to a cluster and node. The Incarnation is
// drawn once, when the directory is first used; it goes into every
// RegisterBroker, so a node whose directory was wiped comes back with a new
// incarnation and cannot silently take over its old registration.
type Identity struct {
	ClusterID   string   `json:"cluster_id"`
	NodeID      int32    `json:"node_id"`
	Incarnation [16]byte `json:"incarnation"`
}

// LoadOrCreateIdentity reads dir/identity, checking it against clusterID and
// nodeID, or creates it with a fresh incarnation read from random (nil:
// crypto/rand). created reports a new file: the directory was empty.
// The file is a WAL-framed (CRC-checked) JSON record written atomically.
func LoadOrCreateIdentity(dir, clusterID string, nodeID int32, random io.Reader) (id Identity, created bool, err error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		rec, n, derr := wal.DecodeRecord(b, len(b))
		if derr != nil || n != len(b) || rec.Type != wal.TypeIdentity {
			return Identity{}, false, fmt.Errorf("raftlog: %s: %w", path, errors.Join(wal.ErrCorrupt, derr))
		}
		if err := json.Unmarshal(rec.Data, &id); err != nil {
			return Identity{}, false, fmt.Errorf("raftlog: %s: %w: %w", path, wal.ErrCorrupt, err)
		}
		if id.ClusterID != clusterID || id.NodeID != nodeID {
			return Identity{}, false, fmt.Errorf("%w: %s holds cluster %q node %d, configured cluster %q node %d",
				ErrIdentityMismatch, path, id.ClusterID, id.NodeID, clusterID, nodeID)
		}
		return id, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return Identity{}, false, fmt.Errorf("raftlog: %w", err)
	}
	if random == nil {
		random = rand.Reader
	}
	id = Identity{ClusterID: clusterID, NodeID: nodeID}
	if _, err := io.ReadFull(random, id.Incarnation[:]); err != nil {
		return Identity{}, false, fmt.Errorf("raftlog: incarnation: %w", err)
	}
	data, err := json.Marshal(id)
	if err != nil {
		return Identity{}, false, fmt.Errorf("raftlog: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Identity{}, false, fmt.Errorf("raftlog: %w", err)
	}
	if err := fsutil.WriteFileAtomic(dir, IdentityFile, wal.AppendRecord(nil, wal.Record{Type: wal.TypeIdentity, Data: data})); err != nil {
		return Identity{}, false, err
	}
	return id, true, nil
}
