package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/partition"
)

// replicationMetrics describe the data plane's replication; gauges are computed at scrape time
// from the partitions this broker leads (each partition is counted by its leader only, as Kafka's
// UnderReplicatedPartitions is).
type replicationMetrics struct {
	isrShrinks      prometheus.Counter
	isrExpands      prometheus.Counter
	isrProposals    prometheus.Counter
	replicaBytesIn  prometheus.Counter
	replicaBytesOut map[string]prometheus.Counter // path
}

func newReplicationMetrics(n *Node, reg *prometheus.Registry) replicationMetrics {
	served := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_replica_fetch_bytes_total",
		Help: "Record bytes this leader served to follower replicas, by write path (sendfile, copy).",
	}, []string{"path"})
	m := replicationMetrics{
		isrShrinks:     newCounter("sluice_isr_shrinks_total", "ISR shrinks committed for partitions this broker leads."),
		isrExpands:     newCounter("sluice_isr_expands_total", "ISR expands committed for partitions this broker leads."),
		isrProposals:   newCounter("sluice_isr_proposals_total", "ISR changes this broker proposed as leader (AlterPartition items)."),
		replicaBytesIn: newCounter("sluice_replica_received_bytes_total", "Record bytes this broker's fetchers received from leaders."),
		replicaBytesOut: map[string]prometheus.Counter{
			pathSendfile: served.WithLabelValues(pathSendfile),
			pathCopy:     served.WithLabelValues(pathCopy),
		},
	}
	count := func(name, help string, pred func(p *partition.Replica, isr, replicas, minISR int) bool) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			v := 0
			if r := n.registry(); r != nil {
				for _, t := range r.view.Load().byName {
					for i, p := range t.parts {
						if p == nil || !p.Role().Leader {
							continue
						}
						st := t.state[i]
						if pred(p, len(st.ISR), len(st.Replicas), t.minInsync()) {
							v++
						}
					}
				}
			}
			return float64(v)
		})
	}
	reg.MustRegister(m.isrShrinks, m.isrExpands, m.isrProposals, m.replicaBytesIn, served,
		count("sluice_under_replicated_partitions", "Led partitions whose ISR is smaller than their replica set.",
			func(_ *partition.Replica, isr, replicas, _ int) bool { return isr < replicas }),
		count("sluice_under_min_isr_partitions", "Led partitions whose ISR is smaller than min.insync.replicas (acks=all refused).",
			func(_ *partition.Replica, isr, _, minISR int) bool { return isr < minISR }),
		count("sluice_at_min_isr_partitions", "Led partitions whose ISR is exactly min.insync.replicas (one more loss refuses acks=all).",
			func(_ *partition.Replica, isr, _, minISR int) bool { return isr == minISR }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_offline_replicas",
			Help: "Replicas on this broker whose logs failed (a disk error); they neither lead nor follow until a restart.",
		}, func() float64 {
			if n.offline == nil {
				return 0
			}
			return float64(n.offline.count())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_replica_max_lag_offsets",
			Help: "The largest follower lag, in offsets, over the partitions this broker leads.",
		}, func() float64 {
			var worst int64
			if r := n.registry(); r != nil {
				now := time.Now()
				for _, p := range r.partitions() {
					for _, f := range p.Followers(now) {
						worst = max(worst, f.LagOffsets)
					}
				}
			}
			return float64(worst)
		}),
	)
	return m
}
