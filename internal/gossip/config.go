package gossip

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrNoSecret reports a Config without a cluster secret: gossip is always
// encrypted.
var ErrNoSecret = errors.New("gossip: cluster secret required")

// keyLabel is the HMAC message that turns the cluster secret into the
// gossip key; changing it changes every cluster's gossip key.
const keyLabel = "sluice gossip aes-256-gcm key v1"

// Config configures a Membership.
type Config struct {
	// NodeID is this broker's id; it must equal Meta.NodeID. The memberlist
	// node name is derived from it ("node-<id>").
	NodeID int32
	// BindAddr is host:port for gossip, UDP and TCP on the same port. Port 0
	// picks a free port (see Membership.Addr). Required.
	BindAddr string
	// AdvertiseAddr is the host:port others should use to reach us; empty
	// means the bound address (a private IP when binding 0.0.0.0).
	AdvertiseAddr string
	// Seeds are gossip addresses Join contacts when called without
	// arguments. Empty is fine for the first broker.
	Seeds []string
	// Meta is published to every member; Meta.NodeID must equal NodeID.
	Meta NodeMeta
	// Secret is the cluster secret (package link's LoadSecret). Gossip is
	// encrypted and authenticated with AES-256-GCM under
	// HMAC-SHA256(Secret, "sluice gossip aes-256-gcm key v1"). Required.
	Secret []byte
	// Cluster, if set, labels every gossip packet and stream; members with
	// a different label ignore us even if they share the secret. Zero value:
	// no label. At most 255 bytes.
	Cluster string

	// ProbeInterval is memberlist's failure-detection round: one member is
	// probed per interval. Zero is invalid; see DefaultConfig.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for an ack; it must be
	// shorter than ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect member has to refute before
	// memberlist declares it dead: SuspicionMult × max(1, log10 N) ×
	// ProbeInterval, lengthened up to 6× while waiting for confirmations
	// from other members.
	SuspicionMult int
	// GossipInterval is how often queued state changes are pushed to a few
	// random members.
	GossipInterval time.Duration
	// PushPullInterval is how often full state is exchanged over TCP with
	// one random member (anti-entropy).
	PushPullInterval time.Duration
	// DeadNodeReclaimTime is how long after a member was declared dead a
	// node with the same id may take its name from a different address.
	DeadNodeReclaimTime time.Duration
	// SuspectMisses is how many consecutive direct pings from this node must
	// fail before it reports a member Suspect (see doc.go). Zero is invalid.
	SuspectMisses int
	// MaxPendingEvents bounds OnChange events queued behind a slow handler;
	// beyond it events are dropped and counted (Stats.DroppedEvents), and
	// the handler should resynchronise with Members. Zero means 1024.
	MaxPendingEvents int

	// Logger receives this package's and memberlist's logs; nil discards.
	Logger *slog.Logger
	// OnChange, if set, is called for every change of a member's State or
	// Meta, in order, from one goroutine owned by the Membership. It may
	// call Members, Member and Stats, but not Join, Leave, SetMeta or
	// Shutdown (Shutdown waits for this goroutine). A slow handler delays
	// later events; hand work off to your own goroutine.
	OnChange func(Member)
}

// DefaultConfig returns settings for brokers on one LAN: memberlist's own
// LAN timing. A crashed broker in a 3-broker cluster is reported Suspect by
// its peers after about 2–3 s and Dead after about 5–7 s. The caller sets NodeID, BindAddr, Seeds, Meta and Secret.
func DefaultConfig() Config {
	return Config{
		ProbeInterval:       time.Second,            // memberlist LAN default
		ProbeTimeout:        500 * time.Millisecond, // LAN round trip with ample slack
		SuspicionMult:       4,                      // memberlist LAN default
		GossipInterval:      200 * time.Millisecond, // memberlist LAN default
		PushPullInterval:    30 * time.Second,       // memberlist LAN default
		DeadNodeReclaimTime: 10 * time.Second,       // a restarted broker may move ports
		SuspectMisses:       2,                      // one lost UDP packet is not suspicion
		MaxPendingEvents:    1024,                   // far above any cluster's churn
	}
}

// LocalConfig returns DefaultConfig with faster timing for a cluster whose
// brokers share one host (sluice dev, tests): loopback round trips are
// microseconds, so probing 5× as often costs nothing and a killed broker is
// reported Dead in about one second instead of several.
func LocalConfig() Config {
	c := DefaultConfig()
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 3
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 5 * time.Second
	c.DeadNodeReclaimTime = time.Second
	return c
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if len(c.Secret) == 0 {
		return ErrNoSecret
	}
	if c.Meta.NodeID != c.NodeID {
		return fmt.Errorf("gossip: Meta.NodeID %d differs from NodeID %d", c.Meta.NodeID, c.NodeID)
	}
	if _, err := c.Meta.MarshalBinary(); err != nil {
		return err
	}
	if _, _, err := splitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("gossip: BindAddr: %w", err)
	}
	if c.AdvertiseAddr != "" {
		if _, port, err := splitHostPort(c.AdvertiseAddr); err != nil || port == 0 {
			return fmt.Errorf("gossip: AdvertiseAddr %q: want host:port with a non-zero port (%v)", c.AdvertiseAddr, err)
		}
	}
	if len(c.Cluster) > memberlist.LabelMaxSize {
		return fmt.Errorf("gossip: Cluster label is %d bytes, max %d", len(c.Cluster), memberlist.LabelMaxSize)
	}
	switch {
	case c.ProbeInterval <= 0:
		return fmt.Errorf("gossip: ProbeInterval %v must be positive", c.ProbeInterval)
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.ProbeInterval:
		return fmt.Errorf("gossip: ProbeTimeout %v must be positive and below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	case c.SuspicionMult < 1:
		return fmt.Errorf("gossip: SuspicionMult %d must be at least 1", c.SuspicionMult)
	case c.GossipInterval <= 0:
		return fmt.Errorf("gossip: GossipInterval %v must be positive", c.GossipInterval)
	case c.PushPullInterval <= 0:
		return fmt.Errorf("gossip: PushPullInterval %v must be positive", c.PushPullInterval)
	case c.DeadNodeReclaimTime < 0:
		return fmt.Errorf("gossip: DeadNodeReclaimTime %v is negative", c.DeadNodeReclaimTime)
	case c.SuspectMisses < 1:
		return fmt.Errorf("gossip: SuspectMisses %d must be at least 1", c.SuspectMisses)
	case c.MaxPendingEvents < 0:
		return fmt.Errorf("gossip: MaxPendingEvents %d is negative", c.MaxPendingEvents)
	}
	return nil
}

// GossipKey derives the 32-byte AES-256 key memberlist encrypts with from
// the cluster secret: HMAC-SHA256(secret, "sluice gossip aes-256-gcm key v1").
// The internal link uses the secret itself as its HMAC key, so the two uses
// never share a key.
func GossipKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyLabel))
	return m.Sum(nil)
}

// nodeName is the memberlist name for a node id.
func nodeName(id int32) string { return "node-" + strconv.FormatInt(int64(id), 10) }

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, int(port), nil
}

// memberlistConfig builds memberlist's config; d implements its delegates.
func (c Config) memberlistConfig(d *delegates, log *slog.Logger) (*memberlist.Config, error) {
	host, port, err := splitHostPort(c.BindAddr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = nodeName(c.NodeID)
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertisePort = port
	if c.AdvertiseAddr != "" {
		ah, ap, _ := splitHostPort(c.AdvertiseAddr)
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	mc.Label = c.Cluster
	mc.SecretKey = GossipKey(c.Secret)
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.GossipInterval = c.GossipInterval
	mc.PushPullInterval = c.PushPullInterval
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	// memberlist's TCP timeout bounds joins and push/pull; a LAN needs far
	// less than its 10 s default, and Join must not hang that long on a
	// dead seed.
	mc.TCPTimeout = max(2*time.Second, 4*c.ProbeInterval)
	mc.Logger = newMemberlistLogger(log)
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Conflict = d
	mc.Ping = d
	return mc, nil
}
