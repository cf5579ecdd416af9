package node

import (
	"errors"
	"strconv"

	"github.com/sluice-io/sluice/internal/producerstate"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/wire"
)

// Sentinel errors raised by the node itself (segment and producer-state errors are mapped directly).
var (
	ErrUnknownTopic        = errors.New("node: unknown topic or partition")
	ErrUnknownTopicID      = errors.New("node: unknown topic id")
	ErrTopicExists         = errors.New("node: topic already exists")
	ErrInvalidTopic        = errors.New("node: invalid topic name")
	ErrInvalidPartitions   = errors.New("node: invalid partition count")
	ErrInvalidReplication  = errors.New("node: invalid replication factor")
	ErrInvalidAssignment   = errors.New("node: invalid replica assignment")
	ErrInvalidTopicConfig  = errors.New("node: invalid topic config")
	ErrNotEnoughReplicas   = errors.New("node: not enough in-sync replicas")
	ErrTransactional       = errors.New("node: transactional batches are not supported")
	ErrControlBatch        = errors.New("node: control batches are not accepted from clients")
	ErrMultipleBatches     = errors.New("node: produce must carry exactly one record batch per partition")
	ErrBaseOffsetNonZero   = errors.New("node: produce batch base offset must be 0")
	ErrNegativeSequence    = errors.New("node: idempotent batch with negative base sequence")
	ErrCompressionVersion  = errors.New("node: zstd needs produce v7+")
	ErrNoRecords           = errors.New("node: produce partition without records")
	ErrMetadataPersistence = errors.New("node: metadata persistence failed")
	ErrLeaderNotAvailable  = errors.New("node: partition has no leader")
	ErrNotController       = errors.New("node: no controller reachable")
	ErrBrokerNotAvailable  = errors.New("node: broker not registered or fenced")
	ErrIdentityConflict    = errors.New("node: data directory does not match the cluster")
	// ErrReplicaNotAuthorized: a replica fetch on a client listener, or for another broker than the
	// internal link authenticated (TOPIC_AUTHORIZATION_FAILED, as Kafka answers a follower fetch
	// without cluster authorization).
	ErrReplicaNotAuthorized = errors.New("node: replica fetch not authorized on this connection")

	errInvalidRequest = errors.New("node: invalid request") // INVALID_REQUEST
)

// Partition-level sentinels live in package partition; node raises them too (a closed registry, a
// lease that ran out, an admin wait) under the same values, so errors.Is matches either name.
var (
	ErrClosed             = partition.ErrClosed
	ErrNotLeader          = partition.ErrNotLeader
	ErrRequestTimedOut    = partition.ErrRequestTimedOut
	ErrFencedLeaderEpoch  = partition.ErrFencedLeaderEpoch
	ErrUnknownLeaderEpoch = partition.ErrUnknownLeaderEpoch
)

// codeFor maps an error from node, partition, replica, segment or producer state to its Kafka error
// code. This is the only place Go errors become codes; an unmapped error is UNKNOWN_SERVER_ERROR and
// the caller logs it.
func codeFor(err error) int16 {
	switch {
	case err == nil:
		return wire.CodeNone
	case errors.Is(err, ErrUnknownTopic):
		return wire.CodeUnknownTopicOrPartition
	case errors.Is(err, errInvalidRequest):
		return wire.CodeInvalidRequest
	case errors.Is(err, ErrUnknownTopicID):
		return wire.CodeUnknownTopicID
	case errors.Is(err, ErrTopicExists):
		return wire.CodeTopicAlreadyExists
	case errors.Is(err, ErrInvalidTopic):
		return wire.CodeInvalidTopicException
	case errors.Is(err, ErrInvalidPartitions):
		return wire.CodeInvalidPartitions
	case errors.Is(err, ErrInvalidReplication):
		return wire.CodeInvalidReplicationFactor
	case errors.Is(err, ErrInvalidAssignment):
		return wire.CodeInvalidReplicaAssignment
	case errors.Is(err, ErrInvalidTopicConfig):
		return wire.CodeInvalidConfig
	case errors.Is(err, ErrRequestTimedOut):
		return wire.CodeRequestTimedOut
	case errors.Is(err, ErrNotLeader):
		return wire.CodeNotLeaderOrFollower
	case errors.Is(err, ErrLeaderNotAvailable):
		return wire.CodeLeaderNotAvailable
	case errors.Is(err, ErrNotController):
		return wire.CodeNotController
	case errors.Is(err, ErrBrokerNotAvailable):
		return wire.CodeBrokerNotAvailable
	case errors.Is(err, replica.ErrNotEnoughReplicasAfterAppend):
		return wire.CodeNotEnoughReplicasAfterAppend
	case errors.Is(err, ErrReplicaNotAuthorized):
		return wire.CodeTopicAuthorizationFailed
	case errors.Is(err, replica.ErrNotLeader), errors.Is(err, replica.ErrNotReplica):
		return wire.CodeNotLeaderOrFollower
	case errors.Is(err, replica.ErrOffsetOutOfRange):
		return wire.CodeOffsetOutOfRange
	case errors.Is(err, ErrNotEnoughReplicas), errors.Is(err, replica.ErrNotEnoughReplicas):
		return wire.CodeNotEnoughReplicas
	case errors.Is(err, ErrTransactional), errors.Is(err, ErrControlBatch), errors.Is(err, ErrMultipleBatches),
		errors.Is(err, ErrBaseOffsetNonZero), errors.Is(err, ErrNegativeSequence), errors.Is(err, ErrNoRecords):
		return wire.CodeInvalidRecord
	case errors.Is(err, ErrCompressionVersion):
		return wire.CodeUnsupportedCompressionType
	case errors.Is(err, ErrFencedLeaderEpoch):
		return wire.CodeFencedLeaderEpoch
	case errors.Is(err, ErrUnknownLeaderEpoch):
		return wire.CodeUnknownLeaderEpoch
	case errors.Is(err, segment.ErrCorrupt):
		return wire.CodeCorruptMessage
	case errors.Is(err, segment.ErrInvalidRecord), errors.Is(err, segment.ErrUnsupportedMagic):
		// On produce a wrong magic is INVALID_RECORD (KAFKA-WIRE.md §4).
		return wire.CodeInvalidRecord
	case errors.Is(err, segment.ErrTooLarge):
		return wire.CodeMessageTooLarge
	case errors.Is(err, segment.ErrUnsupportedCodec):
		return wire.CodeUnsupportedCompressionType
	case errors.Is(err, segment.ErrStaleEpoch):
		return wire.CodeFencedLeaderEpoch
	case errors.Is(err, segment.ErrFailed):
		return wire.CodeKafkaStorageError
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return wire.CodeOffsetOutOfRange
	case errors.Is(err, producerstate.ErrInvalidProducerEpoch):
		return wire.CodeInvalidProducerEpoch
	case errors.Is(err, producerstate.ErrOutOfOrderSequence):
		return wire.CodeOutOfOrderSequenceNumber
	case errors.Is(err, producerstate.ErrInvalidSequence):
		return wire.CodeInvalidRecord
	case errors.Is(err, segment.ErrClosed), errors.Is(err, ErrClosed):
		// The partition is going away (shutdown or delete): retriable for the client.
		return wire.CodeNotLeaderOrFollower
	}
	return wire.CodeUnknownServerError
}

func codeLabel(c int16) string { return strconv.Itoa(int(c)) }
