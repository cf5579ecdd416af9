package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// clusterMetrics describe the metadata plane.
type clusterMetrics struct {
	leaderChanges prometheus.Counter
	fenced        prometheus.Gauge
	partitions    *prometheus.GaugeVec // role
	offline       prometheus.Gauge
}

func newClusterMetrics(n *Node, reg *prometheus.Registry) clusterMetrics {
	c := clusterMetrics{
		leaderChanges: newCounter("sluice_raft_leader_changes_total", "Changes of the metadata raft leader seen by this node."),
		fenced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_broker_fenced", Help: "1 while this broker is fenced (unregistered, not admitted, or its heartbeats fail).",
		}),
		partitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_partitions", Help: "Partition replicas hosted by this node, by role (leader, follower).",
		}, []string{"role"}),
		offline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_offline_partitions", Help: "Partitions without a leader in this node's metadata image.",
		}),
	}
	c.fenced.Set(1)
	c.partitions.WithLabelValues("leader")
	c.partitions.WithLabelValues("follower")
	reg.MustRegister(c.leaderChanges, c.fenced, c.partitions, c.offline,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_raft_applied_index", Help: "Highest metadata raft index applied on this node.",
		}, func() float64 {
			if n.raft == nil {
				return 0
			}
			return float64(n.raft.AppliedIndex())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_controller_is_active", Help: "1 while this node is the controller (metadata raft leader).",
		}, func() float64 {
			if n.raft != nil && n.raft.IsLeader() {
				return 1
			}
			return 0
		}),
	)
	return c
}

func (m *metrics) raftLeaderChanged() { m.cluster.leaderChanges.Inc() }

func (m *metrics) setFenced(v bool) {
	if v {
		m.cluster.fenced.Set(1)
	} else {
		m.cluster.fenced.Set(0)
	}
}

// observeImage refreshes the gauges derived from an applied image (reconciler goroutine).
func (m *metrics) observeImage(n *Node, img *meta.Image) {
	leaders, followers := 0, 0
	for _, p := range n.registry().partitions() {
		if p.Role().Leader {
			leaders++
		} else {
			followers++
		}
	}
	m.cluster.partitions.WithLabelValues("leader").Set(float64(leaders))
	m.cluster.partitions.WithLabelValues("follower").Set(float64(followers))
	offline := 0
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == meta.NoLeader {
				offline++
			}
		}
	}
	m.cluster.offline.Set(float64(offline))
	m.setFenced(!n.mayLead(img))
}
