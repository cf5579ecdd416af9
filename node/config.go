package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// Listener configures one TCP listener. An empty Addr disables the listener.
type Listener struct {
	// Addr is the host:port to bind, e.g. "0.0.0.0:9093" or "127.0.0.1:0" (port 0 picks a free port;
	// Node.Addrs reports the bound one). Empty = listener disabled.
	Addr string
	// AdvertisedHost is the host name clients are told to connect to (Metadata brokers). Empty = the bound
	// host; when the bound host is unspecified (0.0.0.0 or ::) the machine's host name is used.
	AdvertisedHost string
	// AdvertisedPort is the port clients are told to connect to. 0 = the bound port.
	AdvertisedPort int
}

// Enabled reports whether the listener is configured.
func (l Listener) Enabled() bool { return l.Addr != "" }

// TLSFiles configures the TLS listener from PEM files.
type TLSFiles struct {
	CertFile string // server certificate chain (PEM); required when the Client listener is enabled
	KeyFile  string // private key (PEM); required when the Client listener is enabled
	// ClientCAFile, when set, is the CA bundle (PEM) used to verify client certificates. Without
	// RequireClientCert a client certificate is verified if presented but not required.
	ClientCAFile      string
	RequireClientCert bool // reject clients without a certificate signed by ClientCAFile; needs ClientCAFile
}

// Config is a broker's configuration. Build it with DefaultConfig and change fields;
// the zero value is not valid.
type Config struct {
	// NodeID is this broker's id and raft id, 1..MaxInt32. Default 1.
	NodeID int32
	// DataDir holds the metadata raft log and the node identity (<DataDir>/raft/) and one directory
	// per hosted partition replica (<DataDir>/<topic>-<partition>/, Kafka's naming). Required.
	DataDir string
	// ClusterID, when set, is the cluster id this node joins (and, for the first registration of a
	// new cluster, creates). Empty: the id stored in the data dir, else the one the metadata image
	// carries, else (a brand-new cluster) a random one drawn by the first broker to register.
	ClusterID string

	// Internal is the cluster listener (raft messages, controller RPC, later replication):
	// plaintext, every connection authenticated by the cluster secret (package internal/link).
	// Required when InitialVoters has more than one node or Seeds are given.
	Internal Listener
	// Gossip is the memberlist bind address (UDP and TCP on the same port).
	Gossip Listener
	// Seeds are gossip addresses of other brokers to join at start.
	Seeds []string
	// ClusterSecretFile holds the cluster secret (see link.LoadSecret); required when Internal or
	// Gossip is enabled.
	ClusterSecretFile string
	// InitialVoters are the raft voters written at bootstrap into an empty metadata log. Default
	// []int32{NodeID} (a single node: one voter, no Internal listener needed). Ignored once the log
	// exists.
	InitialVoters []int32
	// Rack is this broker's rack (placement spreads replicas over racks). Empty = no rack.
	Rack string
	// HeartbeatInterval is how often the broker heartbeats to the controller. Default 500ms.
	HeartbeatInterval time.Duration
	// SessionTimeout: a broker whose heartbeats stop this long is fenced by the controller.
	// Default 6s.
	SessionTimeout time.Duration
	// LeaderLease is how long an acknowledged heartbeat lets this broker accept writes as a
	// partition leader, from the heartbeat's send time; the controller (which uses its own node's
	// setting) fences no broker, whatever gossip says, before the lease it granted ends. It bounds
	// how fast gossip's dead verdict moves leadership, and a broker whose heartbeats go unanswered
	// this long refuses writes. Between HeartbeatInterval and SessionTimeout; default 2s.
	LeaderLease time.Duration
	// RaftTickInterval is the raft logical clock (elections after 10-20 ticks). Default 100ms.
	RaftTickInterval time.Duration
	// MetadataSnapshotEntries: the metadata image is snapshotted every this many raft entries.
	// Default 10000.
	MetadataSnapshotEntries uint64
	// ControlledShutdownTimeout bounds the wait, in Shutdown, for leadership to move away.
	// Default 30s.
	ControlledShutdownTimeout time.Duration
	// PreferredLeaderInterval is how often the controller moves leadership back to preferred
	// replicas; 0 = off. Default 30s.
	PreferredLeaderInterval time.Duration
	// DefaultReplicationFactor is the replication factor of auto-created topics and of CreateTopics
	// with ReplicationFactor -1. 0 (the default) = min(3, number of InitialVoters), capped at the
	// number of unfenced brokers when a topic is created.
	DefaultReplicationFactor int16

	// Client is the TLS client listener (Kafka protocol; the copying fetch path). TLS 1.2 minimum.
	Client    Listener
	ClientTLS TLSFiles
	// ClientPlain is the plaintext client listener (Kafka protocol; the sendfile fetch path).
	ClientPlain Listener
	// HTTP serves /healthz, /readyz and /metrics.
	HTTP Listener

	// MaxFrameBytes bounds one request frame; a larger size prefix closes the connection before any
	// allocation. Default wire.DefaultMaxFrameBytes (100 MiB).
	MaxFrameBytes int32
	// MaxInFlightRequests is how many request frames one connection may read ahead of the request being
	// answered (requests on a connection are still answered one at a time, in order). Default 5.
	MaxInFlightRequests int
	// MaxInFlightBytes bounds the bytes of read-ahead frames per connection (including the one being
	// answered). A frame larger than the bound is admitted only when nothing else is outstanding, so
	// any frame up to MaxFrameBytes can still be read. Default 16 MiB.
	MaxInFlightBytes int64
	// MaxQueuedRequestBytes bounds the request frames read but not yet answered across all connections
	// together (Kafka's queued.max.request.bytes): decoding a request costs a multiple of its frame
	// (kmsg allocates up to ~32 bytes per frame byte for hostile shapes), so this is the node-wide
	// memory bound on requests. A frame larger than the bound is admitted when nothing else is queued.
	// Default 256 MiB.
	MaxQueuedRequestBytes int64
	// MaxNonProduceFrameBytes bounds the frame of any request other than Produce, checked from the
	// API key before the body is read. Real clients' metadata, offset and admin requests are far
	// smaller; the bound keeps a hostile small-element request from costing gigabytes. Default 8 MiB.
	MaxNonProduceFrameBytes int32
	// WriteTimeout bounds writing one response to a connection (slow readers are disconnected so pinned
	// segments are released). Default 30s.
	WriteTimeout time.Duration

	// AutoCreateTopics creates unknown topics named in Metadata (when the client allows it) and Produce
	// requests. Default true (Kafka's auto.create.topics.enable default).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count for auto-created topics and for CreateTopics with
	// NumPartitions -1. Default 1.
	DefaultPartitions int32

	// Log is the default partition log configuration; topic configs (retention.ms, segment.bytes, ...)
	// override fields per topic. FS, Logger and Now are passed through. Default segment.DefaultConfig().
	Log segment.Config
	// RetentionCheckInterval is how often retention runs over all partitions. Default 5 minutes.
	RetentionCheckInterval time.Duration
	// ProducerSnapshotInterval is how often idempotent-producer state is snapshotted (it is also
	// snapshotted at shutdown). Default 1 minute.
	ProducerSnapshotInterval time.Duration

	// ReplicaLagTime is replica.lag.time.max.ms: a follower that has not caught up with its leader
	// for this long leaves the ISR. Default replica.DefaultLagTime (4s; Kafka: 30s), so that a dead
	// or frozen follower stalls acks=all for about this long.
	ReplicaLagTime time.Duration
	// ReplicaFetchWait is replica.fetch.wait.max.ms, the follower's long-poll. Default 500ms.
	ReplicaFetchWait time.Duration
	// ReplicaFetchMaxBytes is replica.fetch.max.bytes, per partition. Default 1 MiB.
	ReplicaFetchMaxBytes int32
	// ReplicaFetchResponseMaxBytes is replica.fetch.response.max.bytes. Default 10 MiB.
	ReplicaFetchResponseMaxBytes int32
	// ReplicaFetchBackoff is replica.fetch.backoff.ms, the wait after a fetch error. Default 1s.
	ReplicaFetchBackoff time.Duration
	// ReplicationThrottle bounds the record bytes per second this broker's replica fetchers receive,
	// all partitions together (a follower-side replication throttle, KIP-73 style), so a replica
	// catching up does not starve producers of disk and network. 0 (default) = off.
	ReplicationThrottle int64
	// HighWatermarkCheckpointInterval is how often every partition's high watermark is written to
	// its directory (replica.high.watermark.checkpoint.interval.ms; also at shutdown). Default 5s.
	HighWatermarkCheckpointInterval time.Duration

	// DisableSendfile makes the plaintext listener use the copying writer instead of sendfile (for
	// benchmarks comparing the two paths). Default false.
	DisableSendfile bool

	// ShutdownTimeout bounds Shutdown when its context has no deadline. Default 30s.
	ShutdownTimeout time.Duration

	// Logger receives broker logs; nil = discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in. DataDir and at least one client
// listener still need to be set.
func DefaultConfig() Config {
	return Config{
		NodeID:                    1,
		HeartbeatInterval:         500 * time.Millisecond,
		SessionTimeout:            6 * time.Second,
		LeaderLease:               2 * time.Second,
		RaftTickInterval:          100 * time.Millisecond,
		MetadataSnapshotEntries:   10000,
		ControlledShutdownTimeout: 30 * time.Second,
		PreferredLeaderInterval:   30 * time.Second,
		MaxFrameBytes:             100 << 20, // Kafka's socket.request.max.bytes
		MaxInFlightRequests:       5,
		MaxInFlightBytes:          16 << 20,
		MaxQueuedRequestBytes:     256 << 20,
		MaxNonProduceFrameBytes:   8 << 20,
		WriteTimeout:              30 * time.Second,
		AutoCreateTopics:          true,
		DefaultPartitions:         1,
		Log:                       segment.DefaultConfig(),
		RetentionCheckInterval:    5 * time.Minute, // log.retention.check.interval.ms
		ProducerSnapshotInterval:  time.Minute,
		ShutdownTimeout:           30 * time.Second,

		ReplicaLagTime:                  replica.DefaultLagTime,
		ReplicaFetchWait:                500 * time.Millisecond,
		ReplicaFetchMaxBytes:            1 << 20,
		ReplicaFetchResponseMaxBytes:    10 << 20,
		ReplicaFetchBackoff:             time.Second,
		HighWatermarkCheckpointInterval: 5 * time.Second,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("node: invalid config")

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if c.NodeID < 1 {
		return bad("NodeID %d < 1 (raft ids start at 1)", c.NodeID)
	}
	seen := map[int32]bool{}
	for _, v := range c.InitialVoters {
		if v < 1 || seen[v] {
			return bad("InitialVoters %v: ids must be >= 1 and distinct", c.InitialVoters)
		}
		seen[v] = true
	}
	multi := len(c.InitialVoters) > 1 || len(c.InitialVoters) == 1 && c.InitialVoters[0] != c.NodeID ||
		len(c.Seeds) > 0
	if multi && (!c.Internal.Enabled() || !c.Gossip.Enabled()) {
		return bad("a cluster (InitialVoters %v, Seeds %v) needs the Internal and Gossip listeners",
			c.InitialVoters, c.Seeds)
	}
	if (c.Internal.Enabled() || c.Gossip.Enabled()) && c.ClusterSecretFile == "" {
		return bad("Internal/Gossip listeners need ClusterSecretFile")
	}
	if c.HeartbeatInterval <= 0 || c.SessionTimeout <= c.HeartbeatInterval {
		return bad("need 0 < HeartbeatInterval (%v) < SessionTimeout (%v)", c.HeartbeatInterval, c.SessionTimeout)
	}
	if c.LeaderLease <= c.HeartbeatInterval || c.LeaderLease > c.SessionTimeout {
		return bad("need HeartbeatInterval (%v) < LeaderLease (%v) <= SessionTimeout (%v)",
			c.HeartbeatInterval, c.LeaderLease, c.SessionTimeout)
	}
	if c.RaftTickInterval <= 0 {
		return bad("RaftTickInterval %v <= 0", c.RaftTickInterval)
	}
	if c.MetadataSnapshotEntries == 0 {
		return bad("MetadataSnapshotEntries is 0")
	}
	if c.ControlledShutdownTimeout <= 0 {
		return bad("ControlledShutdownTimeout %v <= 0", c.ControlledShutdownTimeout)
	}
	if c.PreferredLeaderInterval < 0 {
		return bad("PreferredLeaderInterval %v < 0", c.PreferredLeaderInterval)
	}
	if c.DefaultReplicationFactor < 0 {
		return bad("DefaultReplicationFactor %d < 0", c.DefaultReplicationFactor)
	}
	if c.DataDir == "" {
		return bad("DataDir is empty")
	}
	if !c.Client.Enabled() && !c.ClientPlain.Enabled() {
		return bad("no client listener: set Client (TLS) and/or ClientPlain")
	}
	for _, l := range []struct {
		name string
		l    Listener
	}{{"Client", c.Client}, {"ClientPlain", c.ClientPlain}, {"HTTP", c.HTTP},
		{"Internal", c.Internal}, {"Gossip", c.Gossip}} {
		if !l.l.Enabled() {
			continue
		}
		if _, _, err := net.SplitHostPort(l.l.Addr); err != nil {
			return bad("%s.Addr %q: %v", l.name, l.l.Addr, err)
		}
		if l.l.AdvertisedPort < 0 || l.l.AdvertisedPort > 65535 {
			return bad("%s.AdvertisedPort %d out of range", l.name, l.l.AdvertisedPort)
		}
	}
	if c.Client.Enabled() && (c.ClientTLS.CertFile == "" || c.ClientTLS.KeyFile == "") {
		return bad("Client listener needs ClientTLS.CertFile and ClientTLS.KeyFile")
	}
	if c.ClientTLS.RequireClientCert && c.ClientTLS.ClientCAFile == "" {
		return bad("ClientTLS.RequireClientCert needs ClientTLS.ClientCAFile")
	}
	if c.MaxFrameBytes < 1024 {
		return bad("MaxFrameBytes %d < 1024", c.MaxFrameBytes)
	}
	if c.MaxInFlightRequests < 1 {
		return bad("MaxInFlightRequests %d < 1", c.MaxInFlightRequests)
	}
	if c.MaxInFlightBytes < 1 {
		return bad("MaxInFlightBytes %d < 1", c.MaxInFlightBytes)
	}
	if c.MaxQueuedRequestBytes < 1 {
		return bad("MaxQueuedRequestBytes %d < 1", c.MaxQueuedRequestBytes)
	}
	if c.MaxNonProduceFrameBytes < 1024 {
		return bad("MaxNonProduceFrameBytes %d < 1024", c.MaxNonProduceFrameBytes)
	}
	if c.WriteTimeout <= 0 {
		return bad("WriteTimeout %v <= 0", c.WriteTimeout)
	}
	if c.DefaultPartitions < 1 {
		return bad("DefaultPartitions %d < 1", c.DefaultPartitions)
	}
	if c.RetentionCheckInterval <= 0 {
		return bad("RetentionCheckInterval %v <= 0", c.RetentionCheckInterval)
	}
	if c.ProducerSnapshotInterval <= 0 {
		return bad("ProducerSnapshotInterval %v <= 0", c.ProducerSnapshotInterval)
	}
	if c.ReplicaLagTime <= 0 || c.ReplicaFetchWait <= 0 || c.ReplicaFetchBackoff <= 0 || c.HighWatermarkCheckpointInterval <= 0 {
		return bad("ReplicaLagTime %v, ReplicaFetchWait %v, ReplicaFetchBackoff %v and HighWatermarkCheckpointInterval %v must be > 0",
			c.ReplicaLagTime, c.ReplicaFetchWait, c.ReplicaFetchBackoff, c.HighWatermarkCheckpointInterval)
	}
	if c.ReplicaFetchWait >= c.ReplicaLagTime {
		return bad("ReplicaFetchWait %v must be below ReplicaLagTime %v (an idle follower would fall out of the ISR)",
			c.ReplicaFetchWait, c.ReplicaLagTime)
	}
	if c.ReplicaFetchMaxBytes < 1024 || c.ReplicaFetchResponseMaxBytes < c.ReplicaFetchMaxBytes {
		return bad("need 1024 <= ReplicaFetchMaxBytes (%d) <= ReplicaFetchResponseMaxBytes (%d)",
			c.ReplicaFetchMaxBytes, c.ReplicaFetchResponseMaxBytes)
	}
	if c.ReplicationThrottle < 0 {
		return bad("ReplicationThrottle %d < 0", c.ReplicationThrottle)
	}
	if c.ShutdownTimeout <= 0 {
		return bad("ShutdownTimeout %v <= 0", c.ShutdownTimeout)
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("%w: Log: %w", ErrInvalidConfig, err)
	}
	return nil
}

// voters returns InitialVoters, defaulting to this node alone.
func (c Config) voters() []int32 {
	if len(c.InitialVoters) == 0 {
		return []int32{c.NodeID}
	}
	return c.InitialVoters
}

// defaultRF is the replication factor used for ReplicationFactor -1 and auto-created topics.
func (c Config) defaultRF() int16 {
	if c.DefaultReplicationFactor > 0 {
		return c.DefaultReplicationFactor
	}
	return int16(min(3, len(c.voters())))
}
