package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The advertised table, spelled out: changing it must be deliberate.
func TestDefaultVersionsTable(t *testing.T) {
	want := map[int16][2]int16{
		KeyProduce:              {0, 11},
		KeyFetch:                {4, 16},
		KeyListOffsets:          {1, 7},
		KeyMetadata:             {0, 12},
		KeyApiVersions:          {0, 4},
		KeyCreateTopics:         {0, 7},
		KeyDeleteTopics:         {0, 6},
		KeyInitProducerID:       {0, 4},
		KeyOffsetForLeaderEpoch: {0, 4},
		KeyDescribeConfigs:      {0, 4},
		KeyCreatePartitions:     {0, 3},
	}
	list := SupportedVersions()
	if len(list) != len(want) {
		t.Fatalf("%d APIs advertised, want %d: %+v", len(list), len(want), list)
	}
	prev := int16(-1)
	for _, api := range list {
		w, ok := want[api.ApiKey]
		if !ok || api.MinVersion != w[0] || api.MaxVersion != w[1] {
			t.Errorf("%s: %d–%d, want %v", kmsg.NameForKey(api.ApiKey), api.MinVersion, api.MaxVersion, w)
		}
		if api.ApiKey <= prev {
			t.Errorf("list not sorted by key at %d", api.ApiKey)
		}
		prev = api.ApiKey
		if lo, hi, ok := Supported(api.ApiKey); !ok || lo != api.MinVersion || hi != api.MaxVersion {
			t.Errorf("Supported(%d) = %d, %d, %v", api.ApiKey, lo, hi, ok)
		}
	}
	for _, g := range GroupAPIs() {
		if _, _, ok := Supported(g.Key); ok {
			t.Errorf("group API %s advertised by default", kmsg.NameForKey(g.Key))
		}
	}
	if lo, hi, _ := Supported(KeyFetch); lo != FetchMinVersion || hi != FetchMaxVersion {
		t.Errorf("Fetch range %d–%d differs from the encoder's", lo, hi)
	}
}

// Every range Sluice can advertise must be decodable by kmsg.
func TestVersionsWithinKmsg(t *testing.T) {
	all := DefaultVersions()
	if err := all.Enable(GroupAPIs()...); err != nil {
		t.Fatalf("Enable(GroupAPIs) = %v", err)
	}
	for _, api := range all.List() {
		req := kmsg.RequestForKey(api.ApiKey)
		if req == nil {
			t.Fatalf("kmsg does not know key %d", api.ApiKey)
		}
		if api.MaxVersion > req.MaxVersion() || api.MinVersion < 0 || api.MinVersion > api.MaxVersion {
			t.Errorf("%s %d–%d, kmsg max %d", kmsg.NameForKey(api.ApiKey), api.MinVersion, api.MaxVersion, req.MaxVersion())
		}
	}
}

func TestVersionsEnableRejects(t *testing.T) {
	v := DefaultVersions()
	before := v
	bad := [][]APIRange{
		{{Key: 999, Min: 0, Max: 1}},
		{{Key: -1, Min: 0, Max: 1}},
		{{Key: 127, Min: 0, Max: 0}}, // in table range, unknown to kmsg
		{{Key: KeyJoinGroup, Min: 3, Max: 2}},
		{{Key: KeyJoinGroup, Min: -1, Max: 2}},
		{{Key: KeyJoinGroup, Min: 0, Max: 99}},
		{{Key: KeyJoinGroup, Min: 0, Max: 5}, {Key: KeyFetch, Min: 0, Max: 99}}, // all or nothing
	}
	for _, rs := range bad {
		if err := v.Enable(rs...); err == nil {
			t.Errorf("Enable(%+v) succeeded", rs)
		}
	}
	if v != before {
		t.Fatal("failed Enable changed the table")
	}
	var zero Versions
	if len(zero.List()) != 0 {
		t.Fatal("zero Versions advertises something")
	}
	if err := zero.Enable(APIRange{KeyFetch, 4, 12}); err != nil {
		t.Fatal(err)
	}
	if lo, hi, ok := zero.Supported(KeyFetch); !ok || lo != 4 || hi != 12 {
		t.Fatalf("after Enable: %d %d %v", lo, hi, ok)
	}
	if _, _, ok := zero.Supported(-5); ok {
		t.Fatal("negative key supported")
	}
	zero.Disable(-5) // no panic
	zero.Disable(500)
}

// Every code constant agrees with franz-go's kerr table, number and name.
func TestCodesMatchKerr(t *testing.T) {
	for code := int16(-1); code <= 120; code++ {
		name := CodeName(code)
		if code == CodeNone {
			if name != "NONE" {
				t.Errorf("CodeName(0) = %q", name)
			}
			continue
		}
		kerrName := "UNKNOWN_CODE_"
		if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && (e.Code == code) {
			kerrName = e.Message
		}
		if code == CodeNotLeaderOrFollower {
			kerrName = "NOT_LEADER_OR_FOLLOWER" // kerr keeps the pre-2.7 name
		}
		if code > 105 {
			continue // beyond the listed range: must just not panic
		}
		if name != kerrName {
			t.Errorf("CodeName(%d) = %q, kerr says %q", code, name, kerrName)
		}
	}
	if CodeName(30000) != "UNKNOWN_CODE_30000" {
		t.Errorf("CodeName(30000) = %q", CodeName(30000))
	}
	// The constants the broker maps errors onto, spelled out.
	spot := map[int16]int16{
		CodeOffsetOutOfRange: 1, CodeCorruptMessage: 2, CodeUnknownTopicOrPartition: 3, CodeNotLeaderOrFollower: 6,
		CodeRequestTimedOut: 7, CodeMessageTooLarge: 10, CodeNotEnoughReplicas: 19, CodeNotEnoughReplicasAfterAppend: 20,
		CodeInvalidRequiredAcks: 21, CodeUnsupportedVersion: 35, CodeOutOfOrderSequenceNumber: 45,
		CodeInvalidProducerEpoch: 47, CodeKafkaStorageError: 56, CodeUnknownProducerID: 59,
		CodeFetchSessionIDNotFound: 70, CodeFencedLeaderEpoch: 74, CodeUnknownLeaderEpoch: 75,
		CodeUnsupportedCompressionType: 76, CodeStaleBrokerEpoch: 77, CodeOffsetNotAvailable: 78,
		CodeInvalidRecord: 87, CodeUnknownTopicID: 100, CodeUnknownServerError: -1,
	}
	for got, want := range spot {
		if got != want {
			t.Errorf("constant %s = %d, want %d", CodeName(got), got, want)
		}
	}
}
