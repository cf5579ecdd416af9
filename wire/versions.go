package wire

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// API keys Sluice refers to by name.
const (
	KeyProduce              int16 = 0
	KeyFetch                int16 = 1
	KeyListOffsets          int16 = 2
	KeyMetadata             int16 = 3
	KeyOffsetCommit         int16 = 8
	KeyOffsetFetch          int16 = 9
	KeyFindCoordinator      int16 = 10
	KeyJoinGroup            int16 = 11
	KeyHeartbeat            int16 = 12
	KeyLeaveGroup           int16 = 13
	KeySyncGroup            int16 = 14
	KeyDescribeGroups       int16 = 15
	KeyListGroups           int16 = 16
	KeyApiVersions          int16 = 18
	KeyCreateTopics         int16 = 19
	KeyDeleteTopics         int16 = 20
	KeyInitProducerID       int16 = 22
	KeyOffsetForLeaderEpoch int16 = 23
	KeyDescribeConfigs      int16 = 32
	KeyCreatePartitions     int16 = 37
	KeyDeleteGroups         int16 = 42
)

// ProduceMinServedVersion is the oldest Produce version Sluice serves.
// Produce v0–2 (magic 0/1 message sets) are advertised and parsed, because
// librdkafka before 2.11.1 refuses a broker whose Produce range does not start
// at 0 (KAFKA-18659), but the Produce handler must answer them with
// CodeUnsupportedVersion.
const ProduceMinServedVersion int16 = 3

// Fetch versions the hand-written encoder in fetch.go produces.
const (
	FetchMinVersion int16 = 4
	FetchMaxVersion int16 = 16
)

// maxKeys bounds the API keys a Versions table can hold. Kafka's keys are
// dense from 0 and currently end below 100.
const maxKeys = 128

// APIRange is one advertised API: its key and the inclusive version range.
type APIRange struct {
	Key, Min, Max int16
}

// Versions is the table of APIs a broker advertises in ApiVersions and accepts
// in ParseRequest. Build it once at start-up (DefaultVersions, then Enable for
// optional features) and share it read-only: concurrent reads are safe,
// concurrent Enable/Disable are not. The zero value advertises nothing.
type Versions struct {
	on       [maxKeys]bool
	min, max [maxKeys]int16
}

// coreRange is the fixed set of APIs Sluice implements unconditionally.
// Each range is within kmsg v1.15.1's MaxVersion and within the versions
// apache/kafka defines (versions_test.go checks the former).
func coreRange(key int16) (lo, hi int16, ok bool) {
	switch key {
	case KeyProduce:
		return 0, 11, true // serve 3–11, see ProduceMinServedVersion
	case KeyFetch:
		return FetchMinVersion, FetchMaxVersion, true
	case KeyListOffsets:
		return 1, 7, true // old librdkafka matches v1 exactly
	case KeyMetadata:
		return 0, 12, true
	case KeyApiVersions:
		return 0, 4, true
	case KeyCreateTopics:
		return 0, 7, true
	case KeyDeleteTopics:
		return 0, 6, true
	case KeyInitProducerID:
		return 0, 4, true // old librdkafka matches v0 exactly
	case KeyOffsetForLeaderEpoch:
		return 0, 4, true
	case KeyDescribeConfigs:
		return 0, 4, true
	case KeyCreatePartitions:
		return 0, 3, true
	}
	return 0, 0, false
}

// GroupAPIs returns the consumer-group APIs with the version ranges Sluice
// intends to serve once group coordination exists. They are not part of
// DefaultVersions; a broker that implements them calls Enable(GroupAPIs()...).
// FindCoordinator keeps v0 in range because older librdkafka gates features
// (including LZ4) on that exact version.
func GroupAPIs() []APIRange {
	return []APIRange{
		{KeyOffsetCommit, 0, 8},
		{KeyOffsetFetch, 0, 8},
		{KeyFindCoordinator, 0, 4},
		{KeyJoinGroup, 0, 9},
		{KeyHeartbeat, 0, 4},
		{KeyLeaveGroup, 0, 5},
		{KeySyncGroup, 0, 5},
		{KeyDescribeGroups, 0, 5},
		{KeyListGroups, 0, 4},
		{KeyDeleteGroups, 0, 2},
	}
}

// DefaultVersions returns the table of APIs Sluice always implements.
func DefaultVersions() Versions {
	var v Versions
	for k := range int16(maxKeys) {
		if lo, hi, ok := coreRange(k); ok {
			v.set(k, lo, hi)
		}
	}
	return v
}

func (v *Versions) set(key, lo, hi int16) {
	v.on[key], v.min[key], v.max[key] = true, lo, hi
}

// Enable adds (or replaces) the given ranges. It rejects a range kmsg cannot
// decode: an unknown key, min < 0, min > max, or max above kmsg's MaxVersion.
// On error the table is unchanged.
func (v *Versions) Enable(ranges ...APIRange) error {
	for _, r := range ranges {
		if r.Key < 0 || r.Key >= maxKeys {
			return fmt.Errorf("wire: enable api %d: key out of range", r.Key)
		}
		req := kmsg.RequestForKey(r.Key)
		if req == nil {
			return fmt.Errorf("wire: enable api %d: unknown to kmsg", r.Key)
		}
		if r.Min < 0 || r.Min > r.Max || r.Max > req.MaxVersion() {
			return fmt.Errorf("wire: enable %s: bad range %d–%d (kmsg max %d)",
				kmsg.NameForKey(r.Key), r.Min, r.Max, req.MaxVersion())
		}
	}
	for _, r := range ranges {
		v.set(r.Key, r.Min, r.Max)
	}
	return nil
}

// Disable stops advertising and accepting key.
func (v *Versions) Disable(key int16) {
	if key >= 0 && key < maxKeys {
		v.on[key] = false
	}
}

// Supported reports the advertised range of key.
func (v *Versions) Supported(key int16) (lo, hi int16, ok bool) {
	if key < 0 || key >= maxKeys || !v.on[key] {
		return 0, 0, false
	}
	return v.min[key], v.max[key], true
}

// List returns the advertised APIs in key order, ready for an
// ApiVersionsResponse. The slice is freshly allocated.
func (v *Versions) List() []kmsg.ApiVersionsResponseApiKey {
	var out []kmsg.ApiVersionsResponseApiKey
	for k := range int16(maxKeys) {
		if !v.on[k] {
			continue
		}
		e := kmsg.NewApiVersionsResponseApiKey()
		e.ApiKey, e.MinVersion, e.MaxVersion = k, v.min[k], v.max[k]
		out = append(out, e)
	}
	return out
}

// SupportedVersions lists the APIs of DefaultVersions.
func SupportedVersions() []kmsg.ApiVersionsResponseApiKey {
	v := DefaultVersions()
	return v.List()
}

// Supported reports key's range in DefaultVersions.
func Supported(key int16) (lo, hi int16, ok bool) {
	return coreRange(key)
}
