package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"
)

// Config holds the settings of a Node.
type Config struct {
	// ID is this node's raft id: the broker's node id, 1..MaxInt32 (the
	// internal link carries node ids as int32).
	ID uint64
	// DataDir holds the raft storage (wal/ and snap/).
	DataDir string
	// InitialVoters is the voter set written into an empty storage at first
	// start (bootstrap). A node not in it starts empty and waits to be added
	// as a learner by the leader. Ignored once the storage holds a log.
	InitialVoters []uint64
	// Peers resolves a node id to its internal listener address; ok false
	// means unknown for now (messages to it are dropped and raft retries).
	// Called from transport goroutines: it must be safe for concurrent use.
	Peers func(id uint64) (addr string, ok bool)
	// TickInterval is the raft logical clock period.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks (randomised by raft to
	// [ElectionTicks, 2*ElectionTicks)); HeartbeatTicks the leader's
	// heartbeat period. ElectionTicks must exceed HeartbeatTicks.
	ElectionTicks  int
	HeartbeatTicks int
	// SnapshotEntries: a snapshot of the state machine is taken once this
	// many entries were applied since the previous one.
	SnapshotEntries uint64
	// CatchUpEntries is how many applied entries stay in memory after a
	// snapshot, so a slightly lagging peer gets entries rather than a whole
	// snapshot. 0 compacts up to the snapshot.
	CatchUpEntries uint64
	// MaxSizePerMsg bounds the entries bytes of one append message;
	// MaxInflightMsgs the append messages in flight to one peer.
	MaxSizePerMsg   uint64
	MaxInflightMsgs int
	// PreVote and CheckQuorum are raft's options of the same names: a
	// partitioned node cannot disrupt the cluster with term bumps, and a
	// leader that loses its quorum steps down.
	PreVote     bool
	CheckQuorum bool
	// Storage configures the WAL and snapshot files (its SnapshotEntries is
	// replaced by the field above).
	Storage StorageConfig
	// Transport configures the raft message transport.
	Transport TransportConfig
	// OnLeaderChange, if set, is called from the raft goroutine whenever the
	// known leader changes (0: none). It must not block.
	OnLeaderChange func(leader, term uint64)
	// Logger receives node, transport and raft messages; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the default node settings; ID, DataDir,
// InitialVoters, Peers and Transport.Secret remain to be set.
func DefaultConfig() Config {
	return Config{
		TickInterval:    100 * time.Millisecond, // elections in 1-2 s, heartbeats every 100 ms
		ElectionTicks:   10,
		HeartbeatTicks:  1,
		SnapshotEntries: DefaultStorageConfig().SnapshotEntries,
		CatchUpEntries:  1_000,   // enough for a peer restarting within seconds
		MaxSizePerMsg:   1 << 20, // 1 MiB of entries per append message
		MaxInflightMsgs: 256,
		PreVote:         true,
		CheckQuorum:     true,
		Storage:         DefaultStorageConfig(),
		Transport:       DefaultTransportConfig(),
	}
}

// Validate rejects settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.ID == 0 || c.ID > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("ID %d outside 1..%d", c.ID, math.MaxInt32))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is empty"))
	}
	for _, v := range c.InitialVoters {
		if v == 0 || v > math.MaxInt32 {
			errs = append(errs, fmt.Errorf("initial voter %d outside 1..%d", v, math.MaxInt32))
		}
	}
	if s := slices.Clone(c.InitialVoters); len(slices.Compact(slices.Sorted(slices.Values(s)))) != len(s) {
		errs = append(errs, fmt.Errorf("duplicate initial voters %v", c.InitialVoters))
	}
	if c.Peers == nil {
		errs = append(errs, errors.New("Peers resolver is nil"))
	}
	if c.TickInterval <= 0 {
		errs = append(errs, fmt.Errorf("TickInterval %v <= 0", c.TickInterval))
	}
	if c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks {
		errs = append(errs, fmt.Errorf("need 0 < HeartbeatTicks (%d) < ElectionTicks (%d)", c.HeartbeatTicks, c.ElectionTicks))
	}
	if c.SnapshotEntries == 0 {
		errs = append(errs, errors.New("SnapshotEntries is 0"))
	}
	if c.MaxSizePerMsg == 0 || c.MaxInflightMsgs <= 0 {
		errs = append(errs, fmt.Errorf("MaxSizePerMsg %d and MaxInflightMsgs %d must be positive", c.MaxSizePerMsg, c.MaxInflightMsgs))
	}
	if uint64(c.Transport.MaxFrameSize) <= c.MaxSizePerMsg {
		errs = append(errs, fmt.Errorf("Transport.MaxFrameSize %d must exceed MaxSizePerMsg %d", c.Transport.MaxFrameSize, c.MaxSizePerMsg))
	}
	if err := c.Storage.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Transport.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftlog: node config: %w", err)
	}
	return nil
}
