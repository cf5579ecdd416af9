package partition

import "errors"

// Sentinel errors of a replica. Package node maps them to Kafka codes (codeFor); segment, replica
// and producer-state errors pass through wrapped or as they are.
var (
	// ErrClosed: the replica is closed or deleted (retriable for a client: NOT_LEADER_OR_FOLLOWER).
	ErrClosed = errors.New("partition: closed")
	// ErrNotLeader: this replica does not lead the partition (NOT_LEADER_OR_FOLLOWER).
	ErrNotLeader = errors.New("partition: not the leader")
	// ErrRequestTimedOut: a bounded wait ran out (REQUEST_TIMED_OUT).
	ErrRequestTimedOut = errors.New("partition: request timed out")
	// ErrFencedLeaderEpoch: a request's current leader epoch is older than the partition's
	// (FENCED_LEADER_EPOCH).
	ErrFencedLeaderEpoch = errors.New("partition: fenced leader epoch")
	// ErrUnknownLeaderEpoch: a request's current leader epoch is newer than the partition's
	// (UNKNOWN_LEADER_EPOCH).
	ErrUnknownLeaderEpoch = errors.New("partition: unknown leader epoch")
	// ErrOffline: the replica's log failed (KAFKA_STORAGE_ERROR); it neither leads nor follows
	// until the broker restarts.
	ErrOffline = errors.New("partition: replica offline after a log failure")
)

// CheckLeaderEpoch applies Kafka's fencing of a client-supplied current leader epoch (-1 = not sent)
// against the partition's leader epoch.
func CheckLeaderEpoch(current, leaderEpoch int32) error {
	switch {
	case current < 0 || current == leaderEpoch:
		return nil
	case current < leaderEpoch:
		return ErrFencedLeaderEpoch
	default:
		return ErrUnknownLeaderEpoch
	}
}
