package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-io/sluice/segment"
)

// topic is an immutable view of one topic. Adding partitions replaces the *topic in the registry;
// holders of an old pointer keep a consistent (older) view.
type topic struct {
	name  string
	id    topicID
	cfg   topicConfig
	parts []*partition
}

func (t *topic) partition(i int32) *partition {
	if i < 0 || int(i) >= len(t.parts) {
		return nil
	}
	return t.parts[i]
}

func (t *topic) record() topicRecord {
	return topicRecord{Name: t.name, ID: t.id, Partitions: int32(len(t.parts)), Configs: t.cfg.set}
}

// registry owns the topics and their partitions. Lookups take a read lock; changes (create, delete,
// add partitions) are serialised by the write lock and persisted through the metadata store before
// they become visible.
type registry struct {
	dataDir string
	base    segment.Config
	store   *fileMetaStore
	lg      *slog.Logger

	mu     sync.RWMutex
	byName map[string]*topic
	byID   map[topicID]*topic
}

// validateTopicName applies Kafka's rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has illegal character %q", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

func (r *registry) partitionDir(topic string, i int32) string {
	return filepath.Join(r.dataDir, topic+"-"+strconv.Itoa(int(i)))
}

// open loads the stored topics, removes partition directories the metadata no longer lists (a delete
// interrupted by a crash) and opens every partition.
func openRegistry(dataDir string, base segment.Config, store *fileMetaStore, lg *slog.Logger) (*registry, error) {
	r := &registry{dataDir: dataDir, base: base, store: store, lg: lg,
		byName: map[string]*topic{}, byID: map[topicID]*topic{}}
	recs, existed, err := store.load()
	if err != nil {
		return nil, err
	}
	known := map[string]int32{}
	for _, rec := range recs {
		known[rec.Name] = rec.Partitions
	}
	if err := r.removeOrphans(known, existed); err != nil {
		return nil, err
	}
	for _, rec := range recs {
		cfg, err := parseTopicConfig(base, rec.Configs)
		if err != nil {
			r.closeAll()
			return nil, fmt.Errorf("topic %q: stored config: %w", rec.Name, err)
		}
		t := &topic{name: rec.Name, id: rec.ID, cfg: cfg}
		for i := range rec.Partitions {
			p, err := openPartition(r.partitionDir(rec.Name, i), rec.Name, i, cfg, lg)
			if err != nil {
				closeParts(t.parts)
				r.closeAll()
				return nil, err
			}
			t.parts = append(t.parts, p)
		}
		r.byName[t.name], r.byID[t.id] = t, t
	}
	return r, nil
}

// removeOrphans deletes <topic>-<n> directories that the metadata does not list. Without a
// topics.json at all, existing partition directories mean lost metadata: refuse to start rather than
// delete data.
func (r *registry) removeOrphans(known map[string]int32, metaExisted bool) error {
	entries, err := os.ReadDir(r.dataDir)
	if err != nil {
		return fmt.Errorf("read data dir: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "meta" {
			continue
		}
		name, idx, ok := parsePartitionDir(e.Name())
		if !ok {
			continue
		}
		if n, listed := known[name]; listed && idx < n {
			continue
		}
		if !metaExisted {
			return fmt.Errorf("data dir has partition directory %q but no meta/topics.json: refusing to start", e.Name())
		}
		r.lg.Warn("removing partition directory of a deleted topic", "dir", e.Name())
		if err := os.RemoveAll(filepath.Join(r.dataDir, e.Name())); err != nil {
			return fmt.Errorf("remove orphan %s: %w", e.Name(), err)
		}
	}
	return nil
}

func parsePartitionDir(dir string) (string, int32, bool) {
	i := strings.LastIndexByte(dir, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(dir[i+1:], 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != dir[i+1:] {
		return "", 0, false
	}
	if validateTopicName(dir[:i]) != nil {
		return "", 0, false
	}
	return dir[:i], int32(n), true
}

func (r *registry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byName[name]
}

func (r *registry) getByID(id topicID) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[id]
}

// all returns every topic (unordered).
func (r *registry) all() []*topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*topic, 0, len(r.byName))
	for _, t := range r.byName {
		out = append(out, t)
	}
	return out
}

func (r *registry) recordsLocked() []topicRecord {
	recs := make([]topicRecord, 0, len(r.byName))
	for _, t := range r.byName {
		recs = append(recs, t.record())
	}
	return recs
}

// createSpec is a validated CreateTopics entry.
type createSpec struct {
	name       string
	partitions int32
	configs    map[string]string
}

// checkCreate validates a topic creation without performing it (CreateTopics validateOnly).
func (r *registry) checkCreate(s createSpec) (topicConfig, error) {
	if err := validateTopicName(s.name); err != nil {
		return topicConfig{}, err
	}
	if s.partitions < 1 {
		return topicConfig{}, fmt.Errorf("%w: %d partitions", ErrInvalidPartitions, s.partitions)
	}
	cfg, err := parseTopicConfig(r.base, s.configs)
	if err != nil {
		return topicConfig{}, err
	}
	if r.get(s.name) != nil {
		return topicConfig{}, fmt.Errorf("%w: %q", ErrTopicExists, s.name)
	}
	return cfg, nil
}

// create creates a topic: partition directories first, then the metadata record (a crash in between
// leaves directories that the next start removes as orphans).
func (r *registry) create(s createSpec) (*topic, error) {
	cfg, err := r.checkCreate(s)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName[s.name] != nil {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, s.name)
	}
	t := &topic{name: s.name, id: newTopicID(), cfg: cfg}
	for i := range s.partitions {
		dir := r.partitionDir(s.name, i)
		if err := os.RemoveAll(dir); err != nil { // leftovers of an earlier topic of this name
			deleteParts(t.parts)
			return nil, fmt.Errorf("create %q: %w", s.name, err)
		}
		p, err := openPartition(dir, s.name, i, cfg, r.lg)
		if err != nil {
			deleteParts(t.parts)
			return nil, fmt.Errorf("create %q: %w", s.name, err)
		}
		t.parts = append(t.parts, p)
	}
	if err := r.store.save(append(r.recordsLocked(), t.record())); err != nil {
		deleteParts(t.parts)
		return nil, err
	}
	r.byName[t.name], r.byID[t.id] = t, t
	r.lg.Info("topic created", "topic", t.name, "topic_id", t.id.String(), "partitions", len(t.parts))
	return t, nil
}

// delete removes a topic from the metadata, then closes and deletes its partitions. The deletion of
// the files happens outside the registry lock: it waits for in-flight fetches to release their views.
func (r *registry) delete(t *topic) error {
	r.mu.Lock()
	cur := r.byName[t.name]
	if cur == nil || cur.id != t.id {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownTopic, t.name)
	}
	delete(r.byName, cur.name)
	delete(r.byID, cur.id)
	if err := r.store.save(r.recordsLocked()); err != nil {
		r.byName[cur.name], r.byID[cur.id] = cur, cur
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()
	var errs []error
	for _, p := range cur.parts {
		if err := p.delete(); err != nil {
			errs = append(errs, err)
		}
	}
	r.lg.Info("topic deleted", "topic", cur.name, "topic_id", cur.id.String())
	if err := errors.Join(errs...); err != nil {
		// The metadata no longer lists the topic: leftovers are removed on the next start.
		r.lg.Warn("deleting partition directories", "topic", cur.name, "err", err)
	}
	return nil
}

// checkAddPartitions validates growing t to count partitions.
func checkAddPartitions(t *topic, count int32) error {
	if count <= int32(len(t.parts)) {
		return fmt.Errorf("%w: topic %q has %d partitions, requested %d (partitions can only be added)",
			ErrInvalidPartitions, t.name, len(t.parts), count)
	}
	return nil
}

// addPartitions grows a topic to count partitions.
func (r *registry) addPartitions(name string, count int32) (*topic, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.byName[name]
	if cur == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if err := checkAddPartitions(cur, count); err != nil {
		return nil, err
	}
	next := &topic{name: cur.name, id: cur.id, cfg: cur.cfg, parts: append([]*partition(nil), cur.parts...)}
	var added []*partition
	for i := int32(len(cur.parts)); i < count; i++ {
		dir := r.partitionDir(name, i)
		if err := os.RemoveAll(dir); err != nil {
			deleteParts(added)
			return nil, err
		}
		p, err := openPartition(dir, name, i, cur.cfg, r.lg)
		if err != nil {
			deleteParts(added)
			return nil, err
		}
		added = append(added, p)
	}
	next.parts = append(next.parts, added...)
	r.byName[name], r.byID[next.id] = next, next
	if err := r.store.save(r.recordsLocked()); err != nil {
		r.byName[name], r.byID[cur.id] = cur, cur
		deleteParts(added)
		return nil, err
	}
	r.lg.Info("partitions added", "topic", name, "partitions", count)
	return next, nil
}

// partitions returns every partition of every topic.
func (r *registry) partitions() []*partition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*partition
	for _, t := range r.byName {
		out = append(out, t.parts...)
	}
	return out
}

// closeAll closes every partition (shutdown). Topics stay listed; the registry is unusable after.
func (r *registry) closeAll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, t := range r.byName {
		if err := closeParts(t.parts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func closeParts(ps []*partition) error {
	var errs []error
	for _, p := range ps {
		if err := p.close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s-%d: %w", p.topic, p.index, err))
		}
	}
	return errors.Join(errs...)
}

func deleteParts(ps []*partition) {
	for _, p := range ps {
		_ = p.delete() // best effort cleanup of a failed create; orphans are removed on the next start
	}
}
