package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// topicRecord is the persisted description of one topic.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         topicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// topicID is a topic UUID; the zero value means "no id" on the wire and is never assigned.
type topicID [16]byte

func (id topicID) String() string { return hex.EncodeToString(id[:]) }

func (id topicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *topicID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != 16 {
		return fmt.Errorf("topic id %q: want 32 hex digits", b)
	}
	_, err := hex.Decode(id[:], b)
	return err
}

func newTopicID() topicID {
	for {
		var id topicID
		_, _ = rand.Read(id[:])   // crypto/rand.Read never fails on Linux
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		if id != (topicID{}) {
			return id
		}
	}
}

// identity is the node's persisted identity (<data>/meta/cluster.json).
type identity struct {
	ClusterID string `json:"cluster_id"`
	NodeID    int32  `json:"node_id"`
}

// fileMetaStore keeps topic metadata in <data>/meta/topics.json, rewritten atomically (write to a
// temporary file, fsync, rename, fsync the directory) on every change. It is the single-node stand-in
// for the replicated metadata image of later issues: the node only calls load, save and identity.
// Safe for concurrent use.
type fileMetaStore struct {
	dir string
	mu  sync.Mutex
}

func newFileMetaStore(dataDir string) (*fileMetaStore, error) {
	dir := filepath.Join(dataDir, "meta")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta dir: %w", err)
	}
	return &fileMetaStore{dir: dir}, nil
}

type topicsFile struct {
	Version int           `json:"version"`
	Topics  []topicRecord `json:"topics"`
}

// load returns the stored topics (none when the file does not exist yet) and whether it existed.
func (s *fileMetaStore) load() ([]topicRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.dir, "topics.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read topics.json: %w", err)
	}
	var f topicsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, true, fmt.Errorf("parse topics.json: %w", err)
	}
	if f.Version != 1 {
		return nil, true, fmt.Errorf("topics.json: unknown version %d", f.Version)
	}
	return f.Topics, true, nil
}

// save replaces the stored topic set.
func (s *fileMetaStore) save(topics []topicRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sorted := append([]topicRecord(nil), topics...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	b, err := json.MarshalIndent(topicsFile{Version: 1, Topics: sorted}, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMetadataPersistence, err)
	}
	if err := writeFileAtomic(s.dir, "topics.json", b); err != nil {
		return fmt.Errorf("%w: %w", ErrMetadataPersistence, err)
	}
	return nil
}

// identity returns the persisted cluster id, creating it on first start. A data dir written by
// another node id is refused so two brokers never share one directory by accident.
func (s *fileMetaStore) identity(nodeID int32) (identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.dir, "cluster.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var id identity
		if err := json.Unmarshal(b, &id); err != nil {
			return identity{}, fmt.Errorf("parse cluster.json: %w", err)
		}
		if id.NodeID != nodeID {
			return identity{}, fmt.Errorf("data dir belongs to node %d, configured NodeID is %d", id.NodeID, nodeID)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return identity{}, fmt.Errorf("read cluster.json: %w", err)
	}
	raw := newTopicID() // a random UUID, base64url like Kafka's cluster ids
	id := identity{ClusterID: base64.RawURLEncoding.EncodeToString(raw[:]), NodeID: nodeID}
	b, _ = json.MarshalIndent(id, "", "  ")
	if err := writeFileAtomic(s.dir, "cluster.json", b); err != nil {
		return identity{}, err
	}
	return id, nil
}

func writeFileAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
