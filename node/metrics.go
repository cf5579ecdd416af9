package node

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
)

// Fetch write paths, the values of sluice_fetch_bytes_total{path}.
const (
	pathSendfile = "sendfile" // plaintext listener, sendfile(2)
	pathCopy     = "copy"     // plaintext listener with DisableSendfile: pread + write
	pathTLS      = "tls"      // TLS listener: pread + write through the TLS connection
)

// metrics are the node's Prometheus collectors, registered in the node's own registry (never the
// global one). No per-partition labels: cardinality stays bounded by API keys, codes and listeners.
type metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec   // api
	requestErrors   *prometheus.CounterVec   // api, code
	requestDuration *prometheus.HistogramVec // api
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	connections     *prometheus.GaugeVec   // listener
	connsAccepted   *prometheus.CounterVec // listener
	connsClosed     *prometheus.CounterVec // reason
	produceBytes    prometheus.Counter
	produceRecords  prometheus.Counter
	produceBatches  prometheus.Counter
	fetchBytes      *prometheus.CounterVec         // path
	fetchPath       map[string]prometheus.Counter  // fetchBytes' three children, resolved once
	apis            [128]atomic.Pointer[apiMetric] // per API key, resolved on first use
	fetchWakeups    prometheus.Counter
	fetchWaiting    prometheus.Gauge
	panics          prometheus.Counter

	cluster clusterMetrics
	replicationMetrics
}

func newMetrics(n *Node) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total", Help: "Kafka requests handled, by API.",
		}, []string{"api"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_request_errors_total",
			Help: "Kafka error codes returned, by API and code (one per failed topic/partition entry).",
		}, []string{"api", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_request_duration_seconds",
			Help:    "Time from a request being dequeued to its response being written, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api"}),
		bytesIn:  newCounter("sluice_received_bytes_total", "Request frame bytes read from clients."),
		bytesOut: newCounter("sluice_sent_bytes_total", "Response frame bytes written to clients."),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_connections", Help: "Open client connections, by listener.",
		}, []string{"listener"}),
		connsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_connections_accepted_total", Help: "Client connections accepted, by listener.",
		}, []string{"listener"}),
		connsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_connections_closed_total",
			Help: "Client connections closed, by reason (eof, bad_frame, unknown_api, malformed, io, panic, shutdown, acks0_error, tls).",
		}, []string{"reason"}),
		produceBytes:   newCounter("sluice_produce_bytes_total", "Record batch bytes appended by Produce."),
		produceRecords: newCounter("sluice_produce_records_total", "Records appended by Produce."),
		produceBatches: newCounter("sluice_produce_batches_total", "Record batches appended by Produce."),
		fetchBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_fetch_bytes_total",
			Help: "Record bytes sent by Fetch, by write path (sendfile, copy, tls).",
		}, []string{"path"}),
		fetchWakeups: newCounter("sluice_fetch_wakeups_total", "Long-polling fetches woken by an append."),
		fetchWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_fetch_waiting", Help: "Fetches currently parked waiting for data (long poll).",
		}),
		panics: newCounter("sluice_handler_panics_total", "Request handlers that panicked (connection closed)."),
	}
	reg.MustRegister(m.requests, m.requestErrors, m.requestDuration, m.bytesIn, m.bytesOut, m.connections,
		m.connsAccepted, m.connsClosed, m.produceBytes, m.produceRecords, m.produceBatches, m.fetchBytes,
		m.fetchWakeups, m.fetchWaiting, m.panics)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_topics", Help: "Topics on this node.",
		}, func() float64 {
			if r := n.registry(); r != nil {
				return float64(r.topicCount())
			}
			return 0
		}),
		offsetSum(n, "sluice_log_end_offset_sum", "Sum of the log end offsets of all partitions.",
			func(p *partition.Replica) int64 { return p.Log().LogEndOffset() }),
		offsetSum(n, "sluice_log_start_offset_sum", "Sum of the log start offsets of all partitions.",
			func(p *partition.Replica) int64 { return p.Log().LogStartOffset() }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.cluster = newClusterMetrics(n, reg)
	m.replicationMetrics = newReplicationMetrics(n, reg)
	// Pre-create the fetch paths so all three series exist from the start.
	m.fetchPath = map[string]prometheus.Counter{}
	for _, p := range []string{pathSendfile, pathCopy, pathTLS} {
		m.fetchPath[p] = m.fetchBytes.WithLabelValues(p)
	}
	return m
}

// apiMetric is one API's request counter and duration histogram.
type apiMetric struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// api returns the request metrics of an API key, looking the labels up only on a key's first
// request (a series appears when its API is first used, as with WithLabelValues per request).
func (m *metrics) api(key int16) *apiMetric {
	if key >= 0 && int(key) < len(m.apis) {
		if a := m.apis[key].Load(); a != nil {
			return a
		}
	}
	name := apiName(key)
	a := &apiMetric{requests: m.requests.WithLabelValues(name), duration: m.requestDuration.WithLabelValues(name)}
	if key >= 0 && int(key) < len(m.apis) {
		m.apis[key].Store(a) // a racing first use stores the same children
	}
	return a
}

func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// offsetSum is a gauge of the sum of offset(p) over the node's partitions.
func offsetSum(n *Node, name, help string, offset func(*partition.Replica) int64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		var sum float64
		if r := n.registry(); r != nil {
			for _, p := range r.partitions() {
				sum += float64(offset(p))
			}
		}
		return sum
	})
}

func apiName(key int16) string {
	if name := kmsg.NameForKey(key); name != "" {
		return name
	}
	return "Unknown"
}
