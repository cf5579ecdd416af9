package meta

import "errors"

// Decoding errors.
var (
	// ErrMalformed reports a command or image encoding that does not decode.
	ErrMalformed = errors.New("meta: malformed encoding")
	// ErrUnknownCommand reports an unknown command type or version.
	ErrUnknownCommand = errors.New("meta: unknown command")
)

// Rejections. Apply returns them deterministically: every replica rejects
// the same command at the same index, and the image stays unchanged.
var (
	ErrAlreadyApplied      = errors.New("meta: index already applied")
	ErrClusterIDMismatch   = errors.New("meta: cluster id mismatch")
	ErrDuplicateBroker     = errors.New("meta: node id registered by another live incarnation")
	ErrUnknownBroker       = errors.New("meta: unknown broker")
	ErrStaleBrokerEpoch    = errors.New("meta: stale broker epoch")
	ErrInvalidBroker       = errors.New("meta: invalid broker registration")
	ErrInvalidTopicName    = errors.New("meta: invalid topic name")
	ErrInvalidTopicID      = errors.New("meta: invalid topic id")
	ErrTopicExists         = errors.New("meta: topic already exists")
	ErrUnknownTopic        = errors.New("meta: unknown topic")
	ErrInvalidAssignment   = errors.New("meta: invalid replica assignment")
	ErrInvalidConfig       = errors.New("meta: invalid topic config")
	ErrUnknownPartition    = errors.New("meta: unknown partition")
	ErrStaleEpoch          = errors.New("meta: stale leader or partition epoch")
	ErrInvalidISR          = errors.New("meta: invalid ISR")
	ErrIneligibleLeader    = errors.New("meta: ineligible leader")
	ErrProducerIDExhausted = errors.New("meta: producer ids exhausted")
	ErrFencedBroker        = errors.New("meta: broker is fenced")
	ErrNotPartitionLeader  = errors.New("meta: proposer does not lead the partition")
	ErrIneligibleReplica   = errors.New("meta: replica cannot join the ISR")
	ErrDuplicatePartition  = errors.New("meta: partition listed twice in one command")
)
