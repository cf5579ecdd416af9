package node

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newHTTPServer serves the operational endpoints:
//
//	/healthz  200 while the process serves HTTP at all (liveness)
//	/readyz   200 between a successful Start and the beginning of Shutdown while the metadata plane
//	          is ready (a raft leader is known, this broker is registered and unfenced, its replicas
//	          reflect its newest applied image, and it holds a leader lease), else 503 (readiness)
//	/metrics  Prometheus text format from the node's own registry
//	/v1/cluster  JSON: this node's view of the cluster (ClusterStatus)
func (n *Node) newHTTPServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !n.ready.Load() || !n.caughtUp() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/v1/cluster", n.serveClusterStatus)
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{Registry: n.metrics.reg}))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
}

// Registry exposes the node's metrics registry (for tests and for embedding the node in a process
// that serves metrics itself).
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }
