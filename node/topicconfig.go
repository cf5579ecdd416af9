package node

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sluice-io/sluice/segment"
)

// Topic configuration keys the broker understands. Anything else in CreateTopics is rejected with
// INVALID_CONFIG rather than silently ignored.
const (
	cfgRetentionMs       = "retention.ms"
	cfgRetentionBytes    = "retention.bytes"
	cfgSegmentBytes      = "segment.bytes"
	cfgSegmentMs         = "segment.ms"
	cfgMaxMessageBytes   = "max.message.bytes"
	cfgMinInsyncReplicas = "min.insync.replicas"
	cfgDurability        = "sluice.durability" // never | interval | always
	cfgTimestampType     = "message.timestamp.type"
	cfgCleanupPolicy     = "cleanup.policy"
	// cfgUncleanElection lets the controller elect an out-of-sync replica when no ISR member is
	// alive (data loss for availability). Default false.
	cfgUncleanElection = "unclean.leader.election.enable"
)

// topicConfigKeys lists every key, sorted by name: describe returns them in this order
// (TestTopicConfigKeysSorted).
var topicConfigKeys = []string{
	cfgCleanupPolicy, cfgMaxMessageBytes, cfgTimestampType, cfgMinInsyncReplicas,
	cfgRetentionBytes, cfgRetentionMs, cfgSegmentBytes, cfgSegmentMs, cfgDurability, cfgUncleanElection,
}

// topicConfig is a topic's effective settings: the node defaults overridden by the topic's explicit
// configs (kept verbatim in set, which is what the topic's CreateTopic command carries).
type topicConfig struct {
	set map[string]string
	log segment.Config
	// minInsync is the explicit min.insync.replicas; 0 = the default for the replication factor.
	minInsync int
	// rf is the topic's replication factor (0 = not known yet), for the min.insync default.
	rf int
}

// effectiveMinInsync is min.insync.replicas: the topic's setting, else 2 for a replication factor
// of 3 or more and 1 below that (Kafka's static default is 1; Sluice's default never exceeds the
// replication factor and keeps acks=all meaningful for RF=3).
func (tc topicConfig) effectiveMinInsync() int {
	switch {
	case tc.minInsync > 0:
		return tc.minInsync
	case tc.rf >= 3:
		return 2
	}
	return 1
}

// defaultTopicConfig is the config of a topic that sets nothing: base (the node's default log
// config, already validated) and the default min.insync.replicas.
func defaultTopicConfig(base segment.Config) topicConfig {
	return topicConfig{set: map[string]string{}, log: base}
}

// parseTopicConfig validates explicit topic configs against base (the node's default log config).
func parseTopicConfig(base segment.Config, set map[string]string) (topicConfig, error) {
	tc := defaultTopicConfig(base)
	bad := func(k, v, why string) error {
		return fmt.Errorf("%w: %s=%q: %s", ErrInvalidTopicConfig, k, v, why)
	}
	for k, v := range set {
		switch k {
		case cfgRetentionMs:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < -1 {
				return tc, bad(k, v, "want milliseconds >= -1")
			}
			if n == -1 {
				tc.log.RetentionAge = -1
			} else {
				tc.log.RetentionAge = time.Duration(n) * time.Millisecond
			}
		case cfgRetentionBytes:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < -1 {
				return tc, bad(k, v, "want bytes >= -1")
			}
			tc.log.RetentionBytes = n
		case cfgSegmentBytes:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1024 {
				return tc, bad(k, v, "want bytes >= 1024")
			}
			tc.log.SegmentBytes = n
		case cfgSegmentMs:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return tc, bad(k, v, "want milliseconds >= 1")
			}
			tc.log.SegmentMaxAge = time.Duration(n) * time.Millisecond
		case cfgMaxMessageBytes:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < segment.HeaderSize {
				return tc, bad(k, v, fmt.Sprintf("want bytes >= %d", segment.HeaderSize))
			}
			tc.log.MaxBatchBytes = int(n)
		case cfgMinInsyncReplicas:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 {
				return tc, bad(k, v, "want >= 1")
			}
			tc.minInsync = int(n)
		case cfgDurability:
			d, err := segment.ParseDurability(v)
			if err != nil {
				return tc, bad(k, v, "want never, interval or always")
			}
			tc.log.Durability = d
		case cfgTimestampType:
			if v != "CreateTime" {
				return tc, bad(k, v, "only CreateTime is supported")
			}
		case cfgCleanupPolicy:
			if v != "delete" {
				return tc, bad(k, v, "only delete is supported")
			}
		case cfgUncleanElection:
			if v != "true" && v != "false" {
				return tc, bad(k, v, "want true or false")
			}
		default:
			return tc, fmt.Errorf("%w: unknown topic config %q", ErrInvalidTopicConfig, k)
		}
		tc.set[k] = v
	}
	if err := tc.log.Validate(); err != nil {
		return tc, fmt.Errorf("%w: %w", ErrInvalidTopicConfig, err)
	}
	return tc, nil
}

// describe lists every known key with its effective value, sorted by key; explicit reports whether
// the topic sets it (DYNAMIC_TOPIC_CONFIG) or it comes from the broker default (DEFAULT_CONFIG).
func (tc topicConfig) describe() []configEntry {
	out := make([]configEntry, 0, len(topicConfigKeys))
	for _, k := range topicConfigKeys {
		_, explicit := tc.set[k]
		out = append(out, configEntry{Name: k, Value: tc.value(k), Explicit: explicit})
	}
	return out
}

type configEntry struct {
	Name, Value string
	Explicit    bool
}

func (tc topicConfig) value(k string) string {
	if v, ok := tc.set[k]; ok {
		return v
	}
	switch k {
	case cfgRetentionMs:
		if tc.log.RetentionAge < 0 {
			return "-1"
		}
		return strconv.FormatInt(tc.log.RetentionAge.Milliseconds(), 10)
	case cfgRetentionBytes:
		return strconv.FormatInt(tc.log.RetentionBytes, 10)
	case cfgSegmentBytes:
		return strconv.FormatInt(tc.log.SegmentBytes, 10)
	case cfgSegmentMs:
		return strconv.FormatInt(tc.log.SegmentMaxAge.Milliseconds(), 10)
	case cfgMaxMessageBytes:
		return strconv.Itoa(tc.log.MaxBatchBytes)
	case cfgMinInsyncReplicas:
		return strconv.Itoa(tc.effectiveMinInsync())
	case cfgDurability:
		return tc.log.Durability.String()
	case cfgTimestampType:
		return "CreateTime"
	case cfgCleanupPolicy:
		return "delete"
	case cfgUncleanElection:
		return "false"
	}
	return ""
}
