package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/node"
)

// int32List is a comma-separated list of ids (--initial-voters 1,2,3).
type int32List struct{ p *[]int32 }

func (l int32List) String() string {
	if l.p == nil {
		return ""
	}
	var s []string
	for _, v := range *l.p {
		s = append(s, strconv.Itoa(int(v)))
	}
	return strings.Join(s, ",")
}

func (l int32List) Set(v string) error {
	var out []int32
	for _, f := range splitList(v) {
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, int32(n))
	}
	*l.p = out
	return nil
}

// csvList is a comma-separated list of strings (--seeds a:1,b:2).
type csvList struct{ p *[]string }

func (l csvList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l csvList) Set(v string) error {
	*l.p = splitList(v)
	return nil
}

// clusterFlags registers the cluster settings: the internal and gossip
// listeners, the cluster secret, the bootstrap voters and liveness timing.
func clusterFlags(fs *flag.FlagSet, cfg *node.Config) {
	fs.StringVar(&cfg.ClusterID, "cluster-id", cfg.ClusterID, "cluster id to create or join (default: the one in the data directory, else learned from the cluster)")
	fs.StringVar(&cfg.Internal.Addr, "internal.addr", cfg.Internal.Addr, "internal listener host:port for raft and the controller (plaintext, cluster-secret authenticated; empty: single node)")
	fs.StringVar(&cfg.Internal.AdvertisedHost, "internal.advertised-host", cfg.Internal.AdvertisedHost, "host name other brokers use for the internal listener")
	fs.StringVar(&cfg.Gossip.Addr, "gossip.addr", cfg.Gossip.Addr, "gossip (memberlist) host:port, UDP and TCP (empty: no gossip)")
	fs.StringVar(&cfg.Gossip.AdvertisedHost, "gossip.advertised-host", cfg.Gossip.AdvertisedHost, "host name other brokers use for gossip")
	fs.Var(csvList{&cfg.Seeds}, "seeds", "gossip addresses of other brokers to join, comma-separated")
	fs.StringVar(&cfg.ClusterSecretFile, "cluster-secret-file", cfg.ClusterSecretFile, "file holding the cluster secret (64 hex chars, mode 0600); required with --internal.addr")
	fs.Var(int32List{&cfg.InitialVoters}, "initial-voters", "node ids of the raft voters at bootstrap, comma-separated (default: this node alone)")
	fs.StringVar(&cfg.Rack, "rack", cfg.Rack, "rack (or zone) of this broker, for replica placement")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "how often this broker heartbeats to the controller")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "a broker silent for this long is fenced by the controller")
	fs.DurationVar(&cfg.LeaderLease, "leader-lease", cfg.LeaderLease, "how long an acknowledged heartbeat lets this broker accept writes as leader (and the least time before gossip alone moves leadership away from a broker)")
	fs.DurationVar(&cfg.RaftTickInterval, "raft-tick-interval", cfg.RaftTickInterval, "raft tick (elections take 10 ticks)")
	fs.Uint64Var(&cfg.MetadataSnapshotEntries, "metadata-snapshot-entries", cfg.MetadataSnapshotEntries, "snapshot the metadata log every this many entries")
	fs.DurationVar(&cfg.ControlledShutdownTimeout, "controlled-shutdown-timeout", cfg.ControlledShutdownTimeout, "limit for moving leadership away on SIGTERM")
	fs.DurationVar(&cfg.ReplicaLagTime, "replica-lag-time", cfg.ReplicaLagTime, "a follower not caught up with its leader for this long leaves the ISR (replica.lag.time.max.ms)")
	fs.DurationVar(&cfg.ReplicaFetchWait, "replica-fetch-wait", cfg.ReplicaFetchWait, "long-poll of follower fetches (replica.fetch.wait.max.ms)")
	fs.DurationVar(&cfg.ReplicaFetchBackoff, "replica-fetch-backoff", cfg.ReplicaFetchBackoff, "wait after a failed follower fetch (replica.fetch.backoff.ms)")
	fs.Int64Var(&cfg.ReplicationThrottle, "replication-throttle", cfg.ReplicationThrottle, "bytes per second this broker's replica fetchers may receive, all partitions together (0: no throttle)")
	fs.DurationVar(&cfg.HighWatermarkCheckpointInterval, "hw-checkpoint-interval", cfg.HighWatermarkCheckpointInterval, "how often partitions write their high watermark to disk")
}
