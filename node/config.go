package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

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

// Config is a single-node broker's configuration. Build it with DefaultConfig and change fields;
// the zero value is not valid.
type Config struct {
	// NodeID is this broker's id, advertised in Metadata as broker and controller. Default 0.
	NodeID int32
	// DataDir holds topic metadata (<DataDir>/meta/) and one directory per partition
	// (<DataDir>/<topic>-<partition>/, Kafka's naming). Required.
	DataDir string

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
		NodeID:                   0,
		MaxFrameBytes:            100 << 20, // Kafka's socket.request.max.bytes
		MaxInFlightRequests:      5,
		MaxInFlightBytes:         16 << 20,
		WriteTimeout:             30 * time.Second,
		AutoCreateTopics:         true,
		DefaultPartitions:        1,
		Log:                      segment.DefaultConfig(),
		RetentionCheckInterval:   5 * time.Minute, // log.retention.check.interval.ms
		ProducerSnapshotInterval: time.Minute,
		ShutdownTimeout:          30 * time.Second,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("node: invalid config")

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if c.NodeID < 0 {
		return bad("NodeID %d < 0", c.NodeID)
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
	}{{"Client", c.Client}, {"ClientPlain", c.ClientPlain}, {"HTTP", c.HTTP}} {
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
	if c.ShutdownTimeout <= 0 {
		return bad("ShutdownTimeout %v <= 0", c.ShutdownTimeout)
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("%w: Log: %w", ErrInvalidConfig, err)
	}
	return nil
}
