package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// UncleanConfig is the topic config that allows unclean leader election.
const UncleanConfig = "unclean.leader.election.enable"

// Config holds the controller's settings. The core uses SessionTimeout,
// PreferredLeaderInterval and UncleanElection; the Server uses all of them.
type Config struct {
	// SessionTimeout: a broker missing heartbeats this long is fenced.
	// Zero means 6s.
	SessionTimeout time.Duration
	// Lease is how long an acknowledged heartbeat lets a broker act as
	// leader, counted from the heartbeat's arrival: the controller fences no
	// broker, whatever gossip says, before the last lease it granted ends.
	// It bounds how soon gossip's dead verdict can move leadership. Zero
	// means 2s. A session never expires before its lease, so a Lease above
	// SessionTimeout lengthens sessions too.
	Lease time.Duration
	// LeaseGrace is added to Lease for every broker when a controller takes
	// over: how long a deposed controller may still grant leases before it
	// notices (with raft's CheckQuorum, within one election timeout of its
	// successor's election; the default allows two). Zero means 2s.
	LeaseGrace time.Duration
	// PreferredLeaderInterval is how often the controller moves leadership
	// back to a partition's first replica when it is unfenced and in the
	// ISR (Kafka's leader.imbalance.check.interval). Zero turns it off.
	PreferredLeaderInterval time.Duration
	// UncleanElection reports whether a topic allows unclean leader
	// election. Nil reads the topic's UncleanConfig ("true" enables it).
	UncleanElection func(topic meta.TopicID) bool
	// TickInterval is how often the Server ticks the core while this node
	// leads. Zero means 250ms.
	TickInterval time.Duration
	// RequestTimeout bounds the handling of one RPC by the Server (the
	// proposals it makes). Zero means 15s.
	RequestTimeout time.Duration
	// MaxMessageSize bounds one RPC message, either way. Zero means 8 MiB.
	MaxMessageSize int
	// Logger receives the controller's decisions; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the default settings.
func DefaultConfig() Config {
	return Config{
		SessionTimeout:          6 * time.Second,        // Kafka broker.session.timeout.ms: 9s; gossip's dead verdict comes sooner
		Lease:                   2 * time.Second,        // four heartbeats at the broker's default 500ms
		LeaseGrace:              2 * time.Second,        // two election timeouts at raft's default ticks
		PreferredLeaderInterval: 30 * time.Second,       // Kafka checks every 300s; leadership returns faster here
		TickInterval:            250 * time.Millisecond, // fencing lags expiry by at most this
		RequestTimeout:          15 * time.Second,       // a commit takes milliseconds; this covers an election
		MaxMessageSize:          8 << 20,                // a CreateTopic of 128k partitions x rf 3 fits
	}
}

// Validate rejects settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.SessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("SessionTimeout %v < 0", c.SessionTimeout))
	}
	if c.Lease < 0 || c.LeaseGrace < 0 {
		errs = append(errs, fmt.Errorf("Lease %v or LeaseGrace %v < 0", c.Lease, c.LeaseGrace))
	}
	if c.PreferredLeaderInterval < 0 {
		errs = append(errs, fmt.Errorf("PreferredLeaderInterval %v < 0", c.PreferredLeaderInterval))
	}
	if c.TickInterval < 0 {
		errs = append(errs, fmt.Errorf("TickInterval %v < 0", c.TickInterval))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("RequestTimeout %v < 0", c.RequestTimeout))
	}
	if c.MaxMessageSize < 0 || (c.MaxMessageSize > 0 && c.MaxMessageSize < minMessageSize) {
		errs = append(errs, fmt.Errorf("MaxMessageSize %d below %d", c.MaxMessageSize, minMessageSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controller: config: %w", err)
	}
	return nil
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SessionTimeout == 0 {
		c.SessionTimeout = d.SessionTimeout
	}
	if c.TickInterval == 0 {
		c.TickInterval = d.TickInterval
	}
	if c.Lease == 0 {
		c.Lease = d.Lease
	}
	if c.LeaseGrace == 0 {
		c.LeaseGrace = d.LeaseGrace
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
