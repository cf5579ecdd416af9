package node

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// ClusterStatus is the /v1/cluster document: this node's view of the cluster, from its applied
// metadata image and its raft node.
type ClusterStatus struct {
	ClusterID    string `json:"cluster_id"`
	NodeID       int32  `json:"node_id"`
	ControllerID int32  `json:"controller_id"` // raft leader; -1 when none is known
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	// ImageIndex is the raft index of the last change in the image the replicas reflect.
	ImageIndex       uint64                `json:"image_index"`
	Voters           []int32               `json:"voters"`
	Learners         []int32               `json:"learners"`
	Brokers          []ClusterBroker       `json:"brokers"`
	Topics           int                   `json:"topics"`
	Partitions       int                   `json:"partitions"`
	Offline          []ClusterPartitionRef `json:"offline_partitions"`
	UnderReplicated  []ClusterPartitionRef `json:"under_replicated_partitions"`
	LeadersPerBroker map[int32]int         `json:"leaders_per_broker"`
	// Led lists the partitions this node leads, with each follower's progress as this leader sees it.
	Led []LedPartition `json:"led_partitions"`
	// OfflineReplicas are this node's replicas whose logs failed (a disk error): they neither lead
	// nor follow until the broker restarts.
	OfflineReplicas []ClusterPartitionRef `json:"offline_replicas"`
}

// LedPartition is a partition this node leads, in ClusterStatus.
type LedPartition struct {
	Topic         string           `json:"topic"`
	Partition     int32            `json:"partition"`
	LeaderEpoch   int32            `json:"leader_epoch"`
	LogEndOffset  int64            `json:"log_end_offset"`
	HighWatermark int64            `json:"high_watermark"`
	ISR           []int32          `json:"isr"`
	Followers     []FollowerStatus `json:"followers"`
}

// FollowerStatus is one follower of a LedPartition.
type FollowerStatus struct {
	Replica int32 `json:"replica"`
	// LogEndOffset is the follower's fetch offset; -1 until it has fetched in this leader epoch.
	LogEndOffset int64 `json:"log_end_offset"`
	InISR        bool  `json:"in_isr"`
	LagOffsets   int64 `json:"lag_offsets"`
	// LagMillis is how long ago the follower was last caught up (0: caught up now; -1: never in
	// this leader epoch).
	LagMillis int64 `json:"lag_ms"`
}

// ClusterBroker is one registration in ClusterStatus.
type ClusterBroker struct {
	ID        int32             `json:"id"`
	Epoch     int64             `json:"epoch"`
	Fenced    bool              `json:"fenced"`
	Rack      string            `json:"rack,omitempty"`
	Leaders   int               `json:"leaders"` // partitions this broker leads
	Client    string            `json:"client"`  // TLS client address, else the plaintext one
	Addresses map[string]string `json:"addresses"`
}

// ClusterPartitionRef names a partition in ClusterStatus.
type ClusterPartitionRef struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
}

// ClusterStatus returns this node's view of the cluster (the /v1/cluster document).
func (n *Node) ClusterStatus() ClusterStatus {
	reg := n.registry()
	img := reg.image()
	st := ClusterStatus{ClusterID: img.ClusterID(), NodeID: n.cfg.NodeID, ControllerID: -1, ImageIndex: img.Index(),
		Voters: []int32{}, Learners: []int32{}, Brokers: []ClusterBroker{}, Offline: []ClusterPartitionRef{},
		UnderReplicated: []ClusterPartitionRef{}, LeadersPerBroker: map[int32]int{}, Led: []LedPartition{}}
	if n.raft != nil {
		if l := n.raft.LeaderID(); l != 0 {
			st.ControllerID = int32(l)
		}
		st.Term, st.AppliedIndex = n.raft.Term(), n.raft.AppliedIndex()
		if cs := n.raft.ConfState(); cs != nil {
			for _, v := range cs.Voters {
				st.Voters = append(st.Voters, int32(v))
			}
			for _, v := range cs.Learners {
				st.Learners = append(st.Learners, int32(v))
			}
			slices.Sort(st.Voters)
			slices.Sort(st.Learners)
		}
	}
	for _, b := range img.Brokers() {
		a := map[string]string{}
		for k, v := range map[string]string{"client": b.Addresses.Client, "client_plain": b.Addresses.ClientPlain,
			"internal": b.Addresses.Internal, "gossip": b.Addresses.Gossip, "http": b.Addresses.HTTP} {
			if v != "" {
				a[k] = v
			}
		}
		st.Brokers = append(st.Brokers, ClusterBroker{ID: b.NodeID, Epoch: b.Epoch, Fenced: b.Fenced, Rack: b.Rack,
			Client: cmp.Or(b.Addresses.Client, b.Addresses.ClientPlain), Addresses: a})
		if !b.Fenced {
			st.LeadersPerBroker[b.NodeID] = 0
		}
	}
	for _, t := range img.Topics() {
		st.Topics++
		for i, p := range t.Partitions {
			st.Partitions++
			ref := ClusterPartitionRef{Topic: t.Name, Partition: int32(i), Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR}
			if p.Leader == meta.NoLeader {
				st.Offline = append(st.Offline, ref)
			} else {
				st.LeadersPerBroker[p.Leader]++
			}
			if len(p.ISR) < len(p.Replicas) {
				st.UnderReplicated = append(st.UnderReplicated, ref)
			}
		}
	}
	for i := range st.Brokers {
		st.Brokers[i].Leaders = st.LeadersPerBroker[st.Brokers[i].ID]
	}
	st.Led = n.replicationStatus()
	st.OfflineReplicas = []ClusterPartitionRef{}
	if n.offline != nil {
		st.OfflineReplicas = n.offline.list()
	}
	return st
}

// replicationStatus reports the partitions this node leads and their followers' progress, ordered by
// topic and partition.
func (n *Node) replicationStatus() []LedPartition {
	out := []LedPartition{}
	now := time.Now()
	for _, t := range n.registry().view.Load().byName {
		for i, p := range t.parts {
			if p == nil {
				continue
			}
			r := p.Role()
			if !r.Leader {
				continue
			}
			lp := LedPartition{Topic: t.name, Partition: int32(i), LeaderEpoch: r.Epoch, LogEndOffset: p.Log().LogEndOffset(),
				HighWatermark: p.HighWatermark(), ISR: t.state[i].ISR, Followers: []FollowerStatus{}}
			for _, f := range p.Followers(now) {
				ms := f.LagTime.Milliseconds()
				if f.LagTime < 0 {
					ms = -1
				}
				lp.Followers = append(lp.Followers, FollowerStatus{Replica: f.Replica, LogEndOffset: f.LogEndOffset,
					InISR: f.InISR, LagOffsets: f.LagOffsets, LagMillis: ms})
			}
			out = append(out, lp)
		}
	}
	slices.SortFunc(out, func(a, b LedPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

func (n *Node) serveClusterStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(n.ClusterStatus())
}
