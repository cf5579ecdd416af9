package node

import (
	"context"
	"time"

	"github.com/sluice-io/sluice/raftlog/controller"
	"github.com/sluice-io/sluice/raftlog/meta"
)

// heartbeatReply is the controller's answer to a heartbeat.
type heartbeatReply struct {
	errorCode      int16 // 0, or wire.CodeStaleBrokerEpoch for an old registration
	fenced         bool  // the registration is fenced (not yet admitted, or expired)
	shouldShutdown bool
	metadataOffset uint64        // the controller's image index when it answered
	lease          time.Duration // how long from the heartbeat's send time it lets this broker lead
}

// controlPlane is how a broker talks to the controller (the raft leader): registration,
// heartbeats, controlled shutdown and forwarded metadata proposals. Every call routes to the current
// controller and is bounded by ctx.
type controlPlane interface {
	register(ctx context.Context, rb meta.RegisterBroker) (brokerEpoch int64, err error)
	heartbeat(ctx context.Context, brokerEpoch int64, wantFence bool) (heartbeatReply, error)
	controlledShutdown(ctx context.Context, brokerEpoch int64) error
	// propose commits cmd and returns its raft index; a command the state machine rejected
	// returns its meta.Err* rejection.
	propose(ctx context.Context, cmd meta.Command) (uint64, error)
	// allocateProducerIDs commits AllocateProducerIDs and returns the block handed out.
	allocateProducerIDs(ctx context.Context, brokerEpoch int64) (meta.ProducerIDBlock, uint64, error)
	// alterPartition commits a leader's ISR changes and returns the raft index and the items the
	// controller refused, with their reasons.
	alterPartition(ctx context.Context, cmd meta.AlterPartition) (uint64, []meta.PartitionRejection, error)
	// replicasOffline reports replicas whose logs failed; the controller moves their leadership and
	// ISR membership away. It returns once the moves are committed.
	replicasOffline(ctx context.Context, brokerEpoch int64, parts []controller.PartitionRef) error
}
