package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/follower"
	"github.com/sluice-io/sluice/internal/fsutil"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// topicID is a topic UUID; the zero value means "no id" on the wire and is never assigned.
type topicID = meta.TopicID

// topic is an immutable view of one topic in one metadata image: its partitions' replication state
// and the local replicas this node hosts. Every applied image change builds new views; holders of an
// old pointer keep a consistent (older) view.
type topic struct {
	name  string
	id    topicID
	cfg   topicConfig
	parts []*partition.Replica // local replica per partition; nil where this node hosts none
	state []meta.Partition     // replication state per partition, from the image
}

// partition returns the local replica of partition i, or nil.
func (t *topic) partition(i int32) *partition.Replica {
	if i < 0 || int(i) >= len(t.parts) {
		return nil
	}
	return t.parts[i]
}

// minInsync is the topic's min.insync.replicas (the same for every partition).
func (t *topic) minInsync() int { return t.cfg.effectiveMinInsync() }

// numPartitions is the topic's partition count in the image.
func (t *topic) numPartitions() int32 { return int32(len(t.state)) }

// leaderFor returns the local replica of partition i if this node leads it, after Kafka's check of
// the client's current leader epoch (-1 = not sent) against the image's.
func (t *topic) leaderFor(i, currentEpoch int32) (*partition.Replica, error) {
	if i < 0 || i >= t.numPartitions() {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownTopic, t.name, i)
	}
	if err := partition.CheckLeaderEpoch(currentEpoch, t.state[i].LeaderEpoch); err != nil {
		return nil, err
	}
	p := t.parts[i]
	if p == nil || !p.Role().Leader {
		return nil, fmt.Errorf("%w: %s-%d (leader %d)", ErrNotLeader, t.name, i, t.state[i].Leader)
	}
	return p, nil
}

// registryView is the published, immutable topic index of one image.
type registryView struct {
	img    *meta.Image
	byName map[string]*topic
	byID   map[topicID]*topic
}

// partKey names a replica: topic id and partition.
type partKey struct {
	id  topicID
	idx int32
}

// registry turns the metadata image into local replicas. apply (called by one goroutine at a time:
// Start, then the metadata reconciler) opens, re-roles and deletes replicas; lookups read the
// published view without locking.
type registry struct {
	dataDir string
	base    segment.Config
	nodeID  int32
	lg      *slog.Logger
	// Replication: the core's settings, where ISR changes go and the replica fetchers (nil on a
	// node without an internal listener: nothing to fetch from).
	repl      replica.Config
	isr       partition.ISRProposer
	fetchers  *follower.Manager
	onOffline func(*partition.Replica) // a replica's log failed (offline.go)

	view atomic.Pointer[registryView]

	mu     sync.Mutex // guards local and closed
	local  map[partKey]*partition.Replica
	closed bool
}

func newRegistry(dataDir string, base segment.Config, nodeID int32, lg *slog.Logger) *registry {
	r := &registry{dataDir: dataDir, base: base, nodeID: nodeID, lg: lg, local: map[partKey]*partition.Replica{}}
	r.view.Store(&registryView{byName: map[string]*topic{}, byID: map[topicID]*topic{}})
	return r
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

func (r *registry) get(name string) *topic { return r.view.Load().byName[name] }

func (r *registry) getByID(id topicID) *topic { return r.view.Load().byID[id] }

// image is the metadata image the current view was built from.
func (r *registry) image() *meta.Image { return r.view.Load().img }

// topicCount is the number of topics in the current view.
func (r *registry) topicCount() int { return len(r.view.Load().byName) }

// partitions returns every local replica.
func (r *registry) partitions() []*partition.Replica {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*partition.Replica, 0, len(r.local))
	for _, p := range r.local {
		out = append(out, p)
	}
	return out
}

// wanted is a replica the image assigns to this node.
type wanted struct {
	topic string
	cfg   topicConfig
	state meta.Partition
}

// apply reconciles the local replicas with img: replicas the image no longer assigns here are
// closed and deleted, new ones opened (an existing directory of the same topic id is recovered, one
// left by an older topic of the same name is replaced), and each replica takes the role the image
// gives it: leader (epoch recorded in the log before the first write) or follower. fenced makes
// every replica a follower (a fenced or zombie broker must not lead). removeOrphans also deletes
// partition directories the image does not assign here (used once the image has caught up at start,
// for deletes that happened while the node was down). Topic views are published at the end.
func (r *registry) apply(img *meta.Image, fenced, removeOrphans bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	want := map[partKey]wanted{}
	cfgs := map[topicID]topicConfig{}
	for _, t := range img.Topics() {
		cfg, err := parseTopicConfig(r.base, t.Configs)
		if err != nil {
			// The proposer validated the configs; a node with other defaults may still refuse one.
			r.lg.Warn("topic config from metadata refused; using defaults", "topic", t.Name, "err", err)
			cfg = defaultTopicConfig(r.base)
		}
		if len(t.Partitions) > 0 {
			cfg.rf = len(t.Partitions[0].Replicas)
		}
		cfgs[t.ID] = cfg
		for i, ps := range t.Partitions {
			if slices.Contains(ps.Replicas, r.nodeID) {
				want[partKey{t.ID, int32(i)}] = wanted{topic: t.Name, cfg: cfg, state: ps}
			}
		}
	}
	var errs []error
	for k, p := range r.local {
		if _, ok := want[k]; ok {
			continue
		}
		delete(r.local, k)
		if r.fetchers != nil {
			r.fetchers.Remove(follower.Key{TopicID: k.id, Partition: k.idx})
		}
		if err := p.Delete(); err != nil {
			errs = append(errs, err)
		}
		r.lg.Info("replica deleted", "topic", p.Topic(), "partition", p.Index())
	}
	if removeOrphans {
		if err := r.removeOrphans(want); err != nil {
			errs = append(errs, err)
		}
	}
	for k, w := range want {
		p := r.local[k]
		if p == nil {
			var err error
			if p, err = r.openReplica(k, w); err != nil {
				errs = append(errs, err)
				continue
			}
			r.local[k] = p
		}
		lead := w.state.Leader == r.nodeID && !fenced
		if err := r.reconcileRole(p, k, w, lead); err != nil {
			errs = append(errs, err)
		}
	}
	v := &registryView{img: img, byName: map[string]*topic{}, byID: map[topicID]*topic{}}
	for _, mt := range img.Topics() {
		t := &topic{name: mt.Name, id: mt.ID, cfg: cfgs[mt.ID], state: mt.Partitions,
			parts: make([]*partition.Replica, len(mt.Partitions))}
		for i := range mt.Partitions {
			t.parts[i] = r.local[partKey{mt.ID, int32(i)}]
		}
		v.byName[t.name], v.byID[t.id] = t, t
	}
	r.view.Store(v)
	return errors.Join(errs...)
}

// partitionMetaFile ties a partition directory to its topic id, so that a directory left by a
// deleted topic is never mistaken for a new topic of the same name.
const partitionMetaFile = "partition.metadata"

func (r *registry) openReplica(k partKey, w wanted) (*partition.Replica, error) {
	dir := r.partitionDir(w.topic, k.idx)
	want := "version: 0\ntopic_id: " + k.id.String() + "\n"
	b, err := os.ReadFile(filepath.Join(dir, partitionMetaFile))
	switch {
	case err == nil && string(b) != want:
		r.lg.Warn("replacing partition directory of an older topic", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("replace %s: %w", dir, err)
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if string(b) != want {
		if err := fsutil.WriteFileAtomic(dir, partitionMetaFile, []byte(want)); err != nil {
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
	}
	return partition.Open(dir, partition.Config{Topic: w.topic, Index: k.idx, TopicID: k.id, NodeID: r.nodeID,
		Log: w.cfg.log, Replication: r.repl, ISR: r.isr, OnOffline: r.onOffline, Logger: r.lg})
}

// reconcileRole gives a replica the role the image assigns: leader (a new leader epoch), an ISR
// update in the same epoch, or follower of the image's leader (fetching from it unless it has none).
func (r *registry) reconcileRole(p *partition.Replica, k partKey, w wanted, lead bool) error {
	cur := p.Role()
	ps := w.state
	fk := follower.Key{TopicID: k.id, Partition: k.idx}
	if p.Offline() {
		// Its log failed: it neither leads nor fetches until a restart; the controller has been
		// told (offline.go) and moves the partition's leadership and ISR away from it.
		if r.fetchers != nil {
			r.fetchers.Remove(fk)
		}
		return nil
	}
	switch {
	case lead && (!cur.Leader || cur.Epoch != ps.LeaderEpoch):
		if r.fetchers != nil {
			r.fetchers.Remove(fk)
		}
		if err := p.BecomeLeader(time.Now(), ps); err != nil {
			p.BecomeFollower(ps)
			return fmt.Errorf("become leader of %s-%d: %w", w.topic, k.idx, err)
		}
		p.Logger().Info("became leader", "leader_epoch", ps.LeaderEpoch, "log_end_offset", p.Log().LogEndOffset(),
			"high_watermark", p.HighWatermark(), "isr", ps.ISR)
	case lead && cur.PartitionEpoch != ps.PartitionEpoch:
		p.UpdateISR(ps)
		p.Logger().Info("isr changed", "isr", ps.ISR, "partition_epoch", ps.PartitionEpoch)
	case !lead && (cur.Leader || cur.Epoch != ps.LeaderEpoch):
		p.BecomeFollower(ps)
		p.Logger().Info("became follower", "leader", ps.Leader, "leader_epoch", ps.LeaderEpoch)
		if r.fetchers == nil {
			return nil
		}
		if ps.Leader == meta.NoLeader || ps.Leader == r.nodeID {
			r.fetchers.Remove(fk)
		} else {
			r.fetchers.Set(fk, follower.Assignment{Topic: w.topic, Leader: ps.Leader, LeaderEpoch: ps.LeaderEpoch, Replica: p})
		}
	case !lead && cur.PartitionEpoch != ps.PartitionEpoch:
		p.UpdateISR(ps)
	}
	return nil
}

// removeOrphans deletes <topic>-<n> directories that want does not list.
func (r *registry) removeOrphans(want map[partKey]wanted) error {
	keep := map[string]bool{}
	for k, w := range want {
		keep[filepath.Base(r.partitionDir(w.topic, k.idx))] = true
	}
	entries, err := os.ReadDir(r.dataDir)
	if err != nil {
		return fmt.Errorf("read data dir: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || keep[e.Name()] {
			continue
		}
		if _, _, ok := parsePartitionDir(e.Name()); !ok {
			continue
		}
		r.lg.Warn("removing partition directory the metadata does not assign here", "dir", e.Name())
		if err := os.RemoveAll(filepath.Join(r.dataDir, e.Name())); err != nil {
			return fmt.Errorf("remove orphan %s: %w", e.Name(), err)
		}
	}
	return nil
}

// closeAll closes every replica (shutdown); the registry refuses apply afterwards.
func (r *registry) closeAll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for _, p := range r.local {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s-%d: %w", p.Topic(), p.Index(), err))
		}
	}
	return errors.Join(errs...)
}
