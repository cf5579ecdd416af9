package node

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"

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
		UnderReplicated: []ClusterPartitionRef{}, LeadersPerBroker: map[int32]int{}}
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
	return st
}

func (n *Node) serveClusterStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(n.ClusterStatus())
}
