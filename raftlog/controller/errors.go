package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// ErrNotController reports a call answered NOT_CONTROLLER (the Server does
// not lead, or has not caught up since it was elected).
var ErrNotController = errors.New("controller: not the controller")

// ErrForbiddenCommand reports a Propose of a command that brokers may not
// forward: RegisterBroker, FenceBroker and UnfenceBroker (they have their
// own calls) and ChangePartition (only the controller moves leaders).
var ErrForbiddenCommand = errors.New("controller: command cannot be forwarded")

// ErrNotCaughtUp reports a ReplaceVoter whose replacement is not a learner
// that has caught up with the leader's commit index.
var ErrNotCaughtUp = errors.New("controller: replacement is not a caught-up learner")

// Error is a non-zero error code answered by the controller, with its
// message. errors.Is matches it against the sentinels of its code (meta's
// rejections, ErrStaleBrokerEpoch, ErrNotController, ...).
type Error struct {
	Code    int16
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("controller: %s (code %d): %s", wire.CodeName(e.Code), e.Code, e.Message)
}

// Is reports whether target is a sentinel mapped to e's code.
func (e *Error) Is(target error) bool {
	for _, m := range codeTable {
		if m.code == e.Code && m.err == target {
			return true
		}
	}
	return false
}

// codeTable maps sentinels to wire codes (first match wins for codeFor).
var codeTable = []struct {
	err  error
	code int16
}{
	{ErrNotController, wire.CodeNotController},
	{raftlog.ErrNotLeader, wire.CodeNotController},
	{raftlog.ErrStopped, wire.CodeNotController},
	{ErrStaleBrokerEpoch, wire.CodeStaleBrokerEpoch},
	{meta.ErrStaleBrokerEpoch, wire.CodeStaleBrokerEpoch},
	{ErrUnknownBroker, wire.CodeBrokerIDNotRegistered},
	{meta.ErrUnknownBroker, wire.CodeBrokerIDNotRegistered},
	{meta.ErrDuplicateBroker, wire.CodeDuplicateBrokerRegistration},
	{meta.ErrClusterIDMismatch, wire.CodeInconsistentClusterID},
	{meta.ErrTopicExists, wire.CodeTopicAlreadyExists},
	{meta.ErrUnknownTopic, wire.CodeUnknownTopicID},
	{meta.ErrUnknownPartition, wire.CodeUnknownTopicOrPartition},
	{meta.ErrInvalidTopicName, wire.CodeInvalidTopicException},
	{meta.ErrInvalidAssignment, wire.CodeInvalidReplicaAssignment},
	{meta.ErrInvalidConfig, wire.CodeInvalidConfig},
	{meta.ErrStaleEpoch, wire.CodeInvalidUpdateVersion},
	{meta.ErrInvalidISR, codeIneligibleReplica},
	{meta.ErrIneligibleLeader, codeIneligibleReplica},
	{meta.ErrIneligibleReplica, codeIneligibleReplica},
	{meta.ErrNotPartitionLeader, wire.CodeNotLeaderOrFollower},
	{meta.ErrFencedBroker, wire.CodeNotLeaderOrFollower},
	{meta.ErrDuplicatePartition, wire.CodeInvalidRequest},
	{meta.ErrInvalidBroker, wire.CodeInvalidRequest},
	{meta.ErrInvalidTopicID, wire.CodeInvalidRequest},
	{meta.ErrMalformed, wire.CodeInvalidRequest},
	{meta.ErrUnknownCommand, wire.CodeInvalidRequest},
	{ErrMalformed, wire.CodeInvalidRequest},
	{ErrForbiddenCommand, wire.CodeInvalidRequest},
	{ErrPeerMismatch, wire.CodeClusterAuthorizationFailed},
	{ErrNotCaughtUp, wire.CodeInvalidRequest},
	{raftlog.ErrConfChange, wire.CodeInvalidRequest},
	{context.DeadlineExceeded, wire.CodeRequestTimedOut},
	{context.Canceled, wire.CodeRequestTimedOut},
	{raftlog.ErrProposalDropped, wire.CodeRequestTimedOut},
	{raftlog.ErrProposalUnknown, wire.CodeRequestTimedOut},
}

// codeFor maps an error to its wire code; unknown errors are
// UNKNOWN_SERVER_ERROR.
func codeFor(err error) int16 {
	if err == nil {
		return wire.CodeNone
	}
	for _, m := range codeTable {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return wire.CodeUnknownServerError
}

// codeIneligibleReplica is Kafka's INELIGIBLE_REPLICA (not in package wire).
const codeIneligibleReplica int16 = 107
