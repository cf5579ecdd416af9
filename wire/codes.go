package wire

import "strconv"

// Kafka error codes, as carried in every response's ErrorCode fields.
//
// The numbers are protocol constants (apache/kafka Errors.java); codes_test.go
// checks every one of them against franz-go's kerr table. Code 6 is listed
// under its current Kafka name NOT_LEADER_OR_FOLLOWER (older clients call it
// NOT_LEADER_FOR_PARTITION). Map Go errors to these codes once, at the edge
// (package node); lower packages return sentinel errors, never codes.
const (
	CodeNone                               int16 = 0
	CodeUnknownServerError                 int16 = -1
	CodeOffsetOutOfRange                   int16 = 1
	CodeCorruptMessage                     int16 = 2
	CodeUnknownTopicOrPartition            int16 = 3
	CodeInvalidFetchSize                   int16 = 4
	CodeLeaderNotAvailable                 int16 = 5
	CodeNotLeaderOrFollower                int16 = 6
	CodeRequestTimedOut                    int16 = 7
	CodeBrokerNotAvailable                 int16 = 8
	CodeReplicaNotAvailable                int16 = 9
	CodeMessageTooLarge                    int16 = 10
	CodeStaleControllerEpoch               int16 = 11
	CodeOffsetMetadataTooLarge             int16 = 12
	CodeNetworkException                   int16 = 13
	CodeCoordinatorLoadInProgress          int16 = 14
	CodeCoordinatorNotAvailable            int16 = 15
	CodeNotCoordinator                     int16 = 16
	CodeInvalidTopicException              int16 = 17
	CodeRecordListTooLarge                 int16 = 18
	CodeNotEnoughReplicas                  int16 = 19
	CodeNotEnoughReplicasAfterAppend       int16 = 20
	CodeInvalidRequiredAcks                int16 = 21
	CodeIllegalGeneration                  int16 = 22
	CodeInconsistentGroupProtocol          int16 = 23
	CodeInvalidGroupID                     int16 = 24
	CodeUnknownMemberID                    int16 = 25
	CodeInvalidSessionTimeout              int16 = 26
	CodeRebalanceInProgress                int16 = 27
	CodeInvalidCommitOffsetSize            int16 = 28
	CodeTopicAuthorizationFailed           int16 = 29
	CodeGroupAuthorizationFailed           int16 = 30
	CodeClusterAuthorizationFailed         int16 = 31
	CodeInvalidTimestamp                   int16 = 32
	CodeUnsupportedSaslMechanism           int16 = 33
	CodeIllegalSaslState                   int16 = 34
	CodeUnsupportedVersion                 int16 = 35
	CodeTopicAlreadyExists                 int16 = 36
	CodeInvalidPartitions                  int16 = 37
	CodeInvalidReplicationFactor           int16 = 38
	CodeInvalidReplicaAssignment           int16 = 39
	CodeInvalidConfig                      int16 = 40
	CodeNotController                      int16 = 41
	CodeInvalidRequest                     int16 = 42
	CodeUnsupportedForMessageFormat        int16 = 43
	CodePolicyViolation                    int16 = 44
	CodeOutOfOrderSequenceNumber           int16 = 45
	CodeDuplicateSequenceNumber            int16 = 46
	CodeInvalidProducerEpoch               int16 = 47
	CodeInvalidTxnState                    int16 = 48
	CodeInvalidProducerIDMapping           int16 = 49
	CodeInvalidTransactionTimeout          int16 = 50
	CodeConcurrentTransactions             int16 = 51
	CodeTransactionCoordinatorFenced       int16 = 52
	CodeTransactionalIDAuthorizationFailed int16 = 53
	CodeSecurityDisabled                   int16 = 54
	CodeOperationNotAttempted              int16 = 55
	CodeKafkaStorageError                  int16 = 56
	CodeLogDirNotFound                     int16 = 57
	CodeSaslAuthenticationFailed           int16 = 58
	CodeUnknownProducerID                  int16 = 59
	CodeReassignmentInProgress             int16 = 60
	CodeDelegationTokenAuthDisabled        int16 = 61
	CodeDelegationTokenNotFound            int16 = 62
	CodeDelegationTokenOwnerMismatch       int16 = 63
	CodeDelegationTokenRequestNotAllowed   int16 = 64
	CodeDelegationTokenAuthorizationFailed int16 = 65
	CodeDelegationTokenExpired             int16 = 66
	CodeInvalidPrincipalType               int16 = 67
	CodeNonEmptyGroup                      int16 = 68
	CodeGroupIDNotFound                    int16 = 69
	CodeFetchSessionIDNotFound             int16 = 70
	CodeInvalidFetchSessionEpoch           int16 = 71
	CodeListenerNotFound                   int16 = 72
	CodeTopicDeletionDisabled              int16 = 73
	CodeFencedLeaderEpoch                  int16 = 74
	CodeUnknownLeaderEpoch                 int16 = 75
	CodeUnsupportedCompressionType         int16 = 76
	CodeStaleBrokerEpoch                   int16 = 77
	CodeOffsetNotAvailable                 int16 = 78
	CodeMemberIDRequired                   int16 = 79
	CodePreferredLeaderNotAvailable        int16 = 80
	CodeGroupMaxSizeReached                int16 = 81
	CodeFencedInstanceID                   int16 = 82
	CodeEligibleLeadersNotAvailable        int16 = 83
	CodeElectionNotNeeded                  int16 = 84
	CodeNoReassignmentInProgress           int16 = 85
	CodeGroupSubscribedToTopic             int16 = 86
	CodeInvalidRecord                      int16 = 87
	CodeUnstableOffsetCommit               int16 = 88
	CodeThrottlingQuotaExceeded            int16 = 89
	CodeProducerFenced                     int16 = 90
	CodeResourceNotFound                   int16 = 91
	CodeDuplicateResource                  int16 = 92
	CodeUnacceptableCredential             int16 = 93
	CodeInconsistentVoterSet               int16 = 94
	CodeInvalidUpdateVersion               int16 = 95
	CodeFeatureUpdateFailed                int16 = 96
	CodePrincipalDeserializationFailure    int16 = 97
	CodeSnapshotNotFound                   int16 = 98
	CodePositionOutOfRange                 int16 = 99
	CodeUnknownTopicID                     int16 = 100
	CodeDuplicateBrokerRegistration        int16 = 101
	CodeBrokerIDNotRegistered              int16 = 102
	CodeInconsistentTopicID                int16 = 103
	CodeInconsistentClusterID              int16 = 104
	CodeTransactionalIDNotFound            int16 = 105
)

// CodeName returns the Kafka name of code, such as "OFFSET_OUT_OF_RANGE", or
// "UNKNOWN_CODE_<n>" for a code this package does not list.
func CodeName(code int16) string {
	switch code {
	case CodeNone:
		return "NONE"
	case CodeUnknownServerError:
		return "UNKNOWN_SERVER_ERROR"
	case CodeOffsetOutOfRange:
		return "OFFSET_OUT_OF_RANGE"
	case CodeCorruptMessage:
		return "CORRUPT_MESSAGE"
	case CodeUnknownTopicOrPartition:
		return "UNKNOWN_TOPIC_OR_PARTITION"
	case CodeInvalidFetchSize:
		return "INVALID_FETCH_SIZE"
	case CodeLeaderNotAvailable:
		return "LEADER_NOT_AVAILABLE"
	case CodeNotLeaderOrFollower:
		return "NOT_LEADER_OR_FOLLOWER"
	case CodeRequestTimedOut:
		return "REQUEST_TIMED_OUT"
	case CodeBrokerNotAvailable:
		return "BROKER_NOT_AVAILABLE"
	case CodeReplicaNotAvailable:
		return "REPLICA_NOT_AVAILABLE"
	case CodeMessageTooLarge:
		return "MESSAGE_TOO_LARGE"
	case CodeStaleControllerEpoch:
		return "STALE_CONTROLLER_EPOCH"
	case CodeOffsetMetadataTooLarge:
		return "OFFSET_METADATA_TOO_LARGE"
	case CodeNetworkException:
		return "NETWORK_EXCEPTION"
	case CodeCoordinatorLoadInProgress:
		return "COORDINATOR_LOAD_IN_PROGRESS"
	case CodeCoordinatorNotAvailable:
		return "COORDINATOR_NOT_AVAILABLE"
	case CodeNotCoordinator:
		return "NOT_COORDINATOR"
	case CodeInvalidTopicException:
		return "INVALID_TOPIC_EXCEPTION"
	case CodeRecordListTooLarge:
		return "RECORD_LIST_TOO_LARGE"
	case CodeNotEnoughReplicas:
		return "NOT_ENOUGH_REPLICAS"
	case CodeNotEnoughReplicasAfterAppend:
		return "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
	case CodeInvalidRequiredAcks:
		return "INVALID_REQUIRED_ACKS"
	case CodeIllegalGeneration:
		return "ILLEGAL_GENERATION"
	case CodeInconsistentGroupProtocol:
		return "INCONSISTENT_GROUP_PROTOCOL"
	case CodeInvalidGroupID:
		return "INVALID_GROUP_ID"
	case CodeUnknownMemberID:
		return "UNKNOWN_MEMBER_ID"
	case CodeInvalidSessionTimeout:
		return "INVALID_SESSION_TIMEOUT"
	case CodeRebalanceInProgress:
		return "REBALANCE_IN_PROGRESS"
	case CodeInvalidCommitOffsetSize:
		return "INVALID_COMMIT_OFFSET_SIZE"
	case CodeTopicAuthorizationFailed:
		return "TOPIC_AUTHORIZATION_FAILED"
	case CodeGroupAuthorizationFailed:
		return "GROUP_AUTHORIZATION_FAILED"
	case CodeClusterAuthorizationFailed:
		return "CLUSTER_AUTHORIZATION_FAILED"
	case CodeInvalidTimestamp:
		return "INVALID_TIMESTAMP"
	case CodeUnsupportedSaslMechanism:
		return "UNSUPPORTED_SASL_MECHANISM"
	case CodeIllegalSaslState:
		return "ILLEGAL_SASL_STATE"
	case CodeUnsupportedVersion:
		return "UNSUPPORTED_VERSION"
	case CodeTopicAlreadyExists:
		return "TOPIC_ALREADY_EXISTS"
	case CodeInvalidPartitions:
		return "INVALID_PARTITIONS"
	case CodeInvalidReplicationFactor:
		return "INVALID_REPLICATION_FACTOR"
	case CodeInvalidReplicaAssignment:
		return "INVALID_REPLICA_ASSIGNMENT"
	case CodeInvalidConfig:
		return "INVALID_CONFIG"
	case CodeNotController:
		return "NOT_CONTROLLER"
	case CodeInvalidRequest:
		return "INVALID_REQUEST"
	case CodeUnsupportedForMessageFormat:
		return "UNSUPPORTED_FOR_MESSAGE_FORMAT"
	case CodePolicyViolation:
		return "POLICY_VIOLATION"
	case CodeOutOfOrderSequenceNumber:
		return "OUT_OF_ORDER_SEQUENCE_NUMBER"
	case CodeDuplicateSequenceNumber:
		return "DUPLICATE_SEQUENCE_NUMBER"
	case CodeInvalidProducerEpoch:
		return "INVALID_PRODUCER_EPOCH"
	case CodeInvalidTxnState:
		return "INVALID_TXN_STATE"
	case CodeInvalidProducerIDMapping:
		return "INVALID_PRODUCER_ID_MAPPING"
	case CodeInvalidTransactionTimeout:
		return "INVALID_TRANSACTION_TIMEOUT"
	case CodeConcurrentTransactions:
		return "CONCURRENT_TRANSACTIONS"
	case CodeTransactionCoordinatorFenced:
		return "TRANSACTION_COORDINATOR_FENCED"
	case CodeTransactionalIDAuthorizationFailed:
		return "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
	case CodeSecurityDisabled:
		return "SECURITY_DISABLED"
	case CodeOperationNotAttempted:
		return "OPERATION_NOT_ATTEMPTED"
	case CodeKafkaStorageError:
		return "KAFKA_STORAGE_ERROR"
	case CodeLogDirNotFound:
		return "LOG_DIR_NOT_FOUND"
	case CodeSaslAuthenticationFailed:
		return "SASL_AUTHENTICATION_FAILED"
	case CodeUnknownProducerID:
		return "UNKNOWN_PRODUCER_ID"
	case CodeReassignmentInProgress:
		return "REASSIGNMENT_IN_PROGRESS"
	case CodeDelegationTokenAuthDisabled:
		return "DELEGATION_TOKEN_AUTH_DISABLED"
	case CodeDelegationTokenNotFound:
		return "DELEGATION_TOKEN_NOT_FOUND"
	case CodeDelegationTokenOwnerMismatch:
		return "DELEGATION_TOKEN_OWNER_MISMATCH"
	case CodeDelegationTokenRequestNotAllowed:
		return "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"
	case CodeDelegationTokenAuthorizationFailed:
		return "DELEGATION_TOKEN_AUTHORIZATION_FAILED"
	case CodeDelegationTokenExpired:
		return "DELEGATION_TOKEN_EXPIRED"
	case CodeInvalidPrincipalType:
		return "INVALID_PRINCIPAL_TYPE"
	case CodeNonEmptyGroup:
		return "NON_EMPTY_GROUP"
	case CodeGroupIDNotFound:
		return "GROUP_ID_NOT_FOUND"
	case CodeFetchSessionIDNotFound:
		return "FETCH_SESSION_ID_NOT_FOUND"
	case CodeInvalidFetchSessionEpoch:
		return "INVALID_FETCH_SESSION_EPOCH"
	case CodeListenerNotFound:
		return "LISTENER_NOT_FOUND"
	case CodeTopicDeletionDisabled:
		return "TOPIC_DELETION_DISABLED"
	case CodeFencedLeaderEpoch:
		return "FENCED_LEADER_EPOCH"
	case CodeUnknownLeaderEpoch:
		return "UNKNOWN_LEADER_EPOCH"
	case CodeUnsupportedCompressionType:
		return "UNSUPPORTED_COMPRESSION_TYPE"
	case CodeStaleBrokerEpoch:
		return "STALE_BROKER_EPOCH"
	case CodeOffsetNotAvailable:
		return "OFFSET_NOT_AVAILABLE"
	case CodeMemberIDRequired:
		return "MEMBER_ID_REQUIRED"
	case CodePreferredLeaderNotAvailable:
		return "PREFERRED_LEADER_NOT_AVAILABLE"
	case CodeGroupMaxSizeReached:
		return "GROUP_MAX_SIZE_REACHED"
	case CodeFencedInstanceID:
		return "FENCED_INSTANCE_ID"
	case CodeEligibleLeadersNotAvailable:
		return "ELIGIBLE_LEADERS_NOT_AVAILABLE"
	case CodeElectionNotNeeded:
		return "ELECTION_NOT_NEEDED"
	case CodeNoReassignmentInProgress:
		return "NO_REASSIGNMENT_IN_PROGRESS"
	case CodeGroupSubscribedToTopic:
		return "GROUP_SUBSCRIBED_TO_TOPIC"
	case CodeInvalidRecord:
		return "INVALID_RECORD"
	case CodeUnstableOffsetCommit:
		return "UNSTABLE_OFFSET_COMMIT"
	case CodeThrottlingQuotaExceeded:
		return "THROTTLING_QUOTA_EXCEEDED"
	case CodeProducerFenced:
		return "PRODUCER_FENCED"
	case CodeResourceNotFound:
		return "RESOURCE_NOT_FOUND"
	case CodeDuplicateResource:
		return "DUPLICATE_RESOURCE"
	case CodeUnacceptableCredential:
		return "UNACCEPTABLE_CREDENTIAL"
	case CodeInconsistentVoterSet:
		return "INCONSISTENT_VOTER_SET"
	case CodeInvalidUpdateVersion:
		return "INVALID_UPDATE_VERSION"
	case CodeFeatureUpdateFailed:
		return "FEATURE_UPDATE_FAILED"
	case CodePrincipalDeserializationFailure:
		return "PRINCIPAL_DESERIALIZATION_FAILURE"
	case CodeSnapshotNotFound:
		return "SNAPSHOT_NOT_FOUND"
	case CodePositionOutOfRange:
		return "POSITION_OUT_OF_RANGE"
	case CodeUnknownTopicID:
		return "UNKNOWN_TOPIC_ID"
	case CodeDuplicateBrokerRegistration:
		return "DUPLICATE_BROKER_REGISTRATION"
	case CodeBrokerIDNotRegistered:
		return "BROKER_ID_NOT_REGISTERED"
	case CodeInconsistentTopicID:
		return "INCONSISTENT_TOPIC_ID"
	case CodeInconsistentClusterID:
		return "INCONSISTENT_CLUSTER_ID"
	case CodeTransactionalIDNotFound:
		return "TRANSACTIONAL_ID_NOT_FOUND"
	}
	return "UNKNOWN_CODE_" + strconv.Itoa(int(code))
}
