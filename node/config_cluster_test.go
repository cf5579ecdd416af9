package node

import (
	"errors"
	"testing"
	"time"
)

func TestClusterConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.DataDir = t.TempDir()
	base.ClientPlain = Listener{Addr: "127.0.0.1:0"}
	if base.NodeID != 1 || base.HeartbeatInterval != 500*time.Millisecond || base.SessionTimeout != 6*time.Second ||
		base.LeaderLease != 2*time.Second ||
		base.RaftTickInterval != 100*time.Millisecond || base.MetadataSnapshotEntries != 10000 ||
		base.ControlledShutdownTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", base)
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("single node defaults: %v", err)
	}
	if v := base.voters(); len(v) != 1 || v[0] != 1 || base.defaultRF() != 1 {
		t.Fatalf("single node voters %v, rf %d", v, base.defaultRF())
	}
	cluster := base
	cluster.InitialVoters = []int32{1, 2, 3}
	cluster.Internal = Listener{Addr: "127.0.0.1:0"}
	cluster.Gossip = Listener{Addr: "127.0.0.1:0"}
	cluster.ClusterSecretFile = "/some/secret"
	if err := cluster.Validate(); err != nil || cluster.defaultRF() != 3 {
		t.Fatalf("cluster: %v (rf %d)", err, cluster.defaultRF())
	}
	for name, mutate := range map[string]func(*Config){
		"node id 0":             func(c *Config) { c.NodeID = 0 },
		"voters without link":   func(c *Config) { c.Internal = Listener{} },
		"voters without gossip": func(c *Config) { c.Gossip = Listener{} },
		"no secret":             func(c *Config) { c.ClusterSecretFile = "" },
		"duplicate voters":      func(c *Config) { c.InitialVoters = []int32{1, 2, 2} },
		"voter 0":               func(c *Config) { c.InitialVoters = []int32{0, 1} },
		"heartbeat >= session":  func(c *Config) { c.HeartbeatInterval = c.SessionTimeout },
		"lease <= heartbeat":    func(c *Config) { c.LeaderLease = c.HeartbeatInterval },
		"lease > session":       func(c *Config) { c.LeaderLease = c.SessionTimeout + 1 },
		"raft tick 0":           func(c *Config) { c.RaftTickInterval = 0 },
		"snapshot entries 0":    func(c *Config) { c.MetadataSnapshotEntries = 0 },
		"controlled shutdown 0": func(c *Config) { c.ControlledShutdownTimeout = 0 },
		"negative rf":           func(c *Config) { c.DefaultReplicationFactor = -1 },
		"bad internal addr":     func(c *Config) { c.Internal.Addr = "nope" },
	} {
		c := cluster
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parseTopicConfig(base.Log, map[string]string{cfgUncleanElection: "true"}); err != nil {
		t.Errorf("unclean.leader.election.enable=true: %v", err)
	}
	if _, err := parseTopicConfig(base.Log, map[string]string{cfgUncleanElection: "maybe"}); !errors.Is(err, ErrInvalidTopicConfig) {
		t.Errorf("unclean.leader.election.enable=maybe: %v", err)
	}
	seedsOnly := base
	seedsOnly.Seeds = []string{"127.0.0.1:7946"}
	if err := seedsOnly.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("seeds without gossip: %v", err)
	}
}
