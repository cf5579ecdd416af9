package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// encodeRequest builds a request frame body (no size prefix) the way a
// client does: header v1/v2, then kmsg's body encoding.
func encodeRequest(req kmsg.Request, corr int32, clientID *string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// sampleRequest returns a request of key at version v with some content, so
// seeds exercise arrays, strings and record bytes rather than empty bodies.
func sampleRequest(key, v int16) kmsg.Request {
	req := kmsg.RequestForKey(key)
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		r.Acks = -1
		r.TimeoutMillis = 1500
		t := kmsg.NewProduceRequestTopic()
		t.Topic = "orders"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition = 2
		p.Records = bytes.Repeat([]byte{0xab}, 70)
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.FetchRequest:
		r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 500, 1, 1<<20
		t := kmsg.NewFetchRequestTopic()
		t.Topic, t.TopicID = "orders", [16]byte{1, 2, 3}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.CurrentLeaderEpoch, p.LastFetchedEpoch = 1, 42, 3, 2
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.MetadataRequest:
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr("orders")
		r.Topics = append(r.Topics, t)
	case *kmsg.ListOffsetsRequest:
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = "orders"
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.ApiVersionsRequest:
		r.ClientSoftwareName, r.ClientSoftwareVersion = "sluice-test", "1.0"
	case *kmsg.CreateTopicsRequest:
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = "new", 3, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
		t.Configs = append(t.Configs, c)
		r.Topics = append(r.Topics, t)
	case *kmsg.DeleteTopicsRequest:
		r.TopicNames = []string{"a", "b"}
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr("a")
		r.Topics = append(r.Topics, t)
	case *kmsg.JoinGroupRequest:
		r.Group, r.ProtocolType = "g", "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 1, 2}
		r.Protocols = append(r.Protocols, p)
	}
	req.SetVersion(v)
	return req
}

// seedRequests is every default and group API at its minimum, maximum and
// (where they differ) first flexible version.
func seedRequests() [][]byte {
	var out [][]byte
	all := DefaultVersions()
	if err := all.Enable(GroupAPIs()...); err != nil {
		panic(err)
	}
	for _, api := range all.List() {
		versions := []int16{api.MinVersion, api.MaxVersion, (api.MinVersion + api.MaxVersion) / 2}
		for v := api.MinVersion; v <= api.MaxVersion; v++ {
			req := kmsg.RequestForKey(api.ApiKey)
			req.SetVersion(v)
			if req.IsFlexible() {
				versions = append(versions, v)
				break
			}
		}
		for _, v := range versions {
			out = append(out, encodeRequest(sampleRequest(api.ApiKey, v), int32(v)+100, kmsg.StringPtr("seed")))
		}
	}
	return out
}

func TestParseRequestRoundTrip(t *testing.T) {
	v := DefaultVersions()
	for _, api := range v.List() {
		for ver := api.MinVersion; ver <= api.MaxVersion; ver++ {
			for _, clientID := range []*string{nil, kmsg.StringPtr(""), kmsg.StringPtr("client-1")} {
				name := fmt.Sprintf("%s/v%d/client=%v", kmsg.NameForKey(api.ApiKey), ver, clientID != nil)
				t.Run(name, func(t *testing.T) {
					req := sampleRequest(api.ApiKey, ver)
					frame := encodeRequest(req, 77, clientID)
					got, err := ParseRequest(frame)
					if err != nil {
						t.Fatalf("ParseRequest(%x) = %v", frame, err)
					}
					if got.Key != api.ApiKey || got.Version != ver || got.CorrelationID != 77 || got.Flexible != req.IsFlexible() {
						t.Fatalf("header = %+v", got.Header)
					}
					if (got.ClientID == nil) != (clientID == nil) || clientID != nil && *got.ClientID != *clientID {
						t.Fatalf("client id = %v, want %v", got.ClientID, clientID)
					}
					if got.Msg.Key() != api.ApiKey || got.Msg.GetVersion() != ver {
						t.Fatalf("msg key/version = %d/%d", got.Msg.Key(), got.Msg.GetVersion())
					}
					if re := encodeRequest(got.Msg, 77, clientID); !bytes.Equal(re, frame) {
						t.Fatalf("re-encoded\n %x\nwant %x", re, frame)
					}
				})
			}
		}
	}
}

// Header tags on a flexible request are skipped, not fed to the body decoder.
func TestParseRequestSkipsHeaderTags(t *testing.T) {
	req := sampleRequest(KeyMetadata, 12)
	body := req.AppendTo(nil)
	frame := encodeRequest(req, 5, kmsg.StringPtr("c"))
	hdrEnd := len(frame) - len(body) - 1 // position of the empty tag section
	// One tag, key 7, 3 bytes of payload.
	tagged := append(append(append([]byte{}, frame[:hdrEnd]...), 1, 7, 3, 0xde, 0xad, 0xbe), body...)
	got, err := ParseRequest(tagged)
	if err != nil {
		t.Fatalf("ParseRequest with header tags: %v", err)
	}
	if m := got.Msg.(*kmsg.MetadataRequest); len(m.Topics) != 1 || *m.Topics[0].Topic != "orders" {
		t.Fatalf("body decoded wrongly: %+v", m)
	}
	// A tag claiming more bytes than remain is malformed.
	bad := append(append([]byte{}, frame[:hdrEnd]...), 1, 7, 100, 0)
	if _, err := ParseRequest(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized header tag: %v, want ErrMalformed", err)
	}
}

func TestParseRequestErrors(t *testing.T) {
	good := encodeRequest(sampleRequest(KeyFetch, 12), 9, kmsg.StringPtr("cli"))
	header := func(key, ver int16, corr int32) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(ver))
		b = binary.BigEndian.AppendUint32(b, uint32(corr))
		return binary.BigEndian.AppendUint16(b, 0xffff)
	}
	cases := []struct {
		name    string
		frame   []byte
		want    error
		hdrKept bool // Request.Header must be filled
	}{
		{"empty", nil, ErrMalformed, false},
		{"seven bytes", good[:7], ErrMalformed, false},
		{"no client id", good[:8], ErrMalformed, false},
		{"client id past end", append(header(1, 12, 1)[:8], 0, 50, 'a'), ErrMalformed, false},
		{"client id -2", append(header(1, 12, 1)[:8], 0xff, 0xfe), ErrMalformed, false},
		{"unknown key", header(999, 0, 3), ErrUnknownAPI, true},
		{"negative key", header(-1, 0, 3), ErrUnknownAPI, true},
		{"group api not enabled", encodeRequest(sampleRequest(KeyJoinGroup, 5), 3, nil), ErrUnknownAPI, true},
		{"fetch v3", encodeRequest(sampleRequest(KeyFetch, 3), 3, nil), ErrUnsupportedVersion, true},
		{"fetch v17", encodeRequest(sampleRequest(KeyFetch, 17), 3, nil), ErrUnsupportedVersion, true},
		{"list offsets v0", encodeRequest(sampleRequest(KeyListOffsets, 0), 3, nil), ErrUnsupportedVersion, true},
		{"negative version", header(KeyMetadata, -3, 3), ErrUnsupportedVersion, true},
		{"api versions v9 garbage body", append(header(KeyApiVersions, 9, 3), 0xff, 0xff, 0xff), ErrUnsupportedVersion, true},
		{"truncated body", good[:len(good)-3], ErrMalformed, true},
		{"missing header tags", header(KeyFetch, 12, 3), ErrMalformed, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequest(tc.frame)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseRequest(%x) = %v, want %v", tc.frame, err, tc.want)
			}
			if got.Msg != nil {
				t.Fatalf("Msg set on error: %T", got.Msg)
			}
			if tc.hdrKept && got.CorrelationID == 0 {
				t.Fatalf("header not kept: %+v", got.Header)
			}
		})
	}
}

// Bytes after a complete body are ignored, as kmsg (and kfake) do: no
// client sends them, and rejecting them would only add a way to fail.
func TestParseRequestIgnoresTrailingBytes(t *testing.T) {
	frame := encodeRequest(sampleRequest(KeyFetch, 12), 9, nil)
	got, err := ParseRequest(append(frame, 1, 2, 3))
	if err != nil {
		t.Fatalf("ParseRequest with trailing bytes: %v", err)
	}
	if f := got.Msg.(*kmsg.FetchRequest); len(f.Topics) != 1 || f.Topics[0].Partitions[0].FetchOffset != 42 {
		t.Fatalf("decoded %+v", f)
	}
}

// The typed error carries what the broker needs to answer ApiVersions.
func TestUnsupportedVersionError(t *testing.T) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(5)
	_, err := ParseRequest(encodeRequest(req, 4242, kmsg.StringPtr("new-client")))
	var uv *UnsupportedVersionError
	if !errors.As(err, &uv) {
		t.Fatalf("err = %v, want *UnsupportedVersionError", err)
	}
	if uv.Header.Key != KeyApiVersions || uv.Header.Version != 5 || uv.Header.CorrelationID != 4242 ||
		*uv.Header.ClientID != "new-client" || !uv.Header.Flexible || uv.Min != 0 || uv.Max != 4 {
		t.Fatalf("error = %+v", uv)
	}
	if uv.Error() == "" {
		t.Fatal("empty message")
	}
}

func TestVersionsEnableGroupsParses(t *testing.T) {
	v := DefaultVersions()
	frame := encodeRequest(sampleRequest(KeyJoinGroup, 5), 3, nil)
	if _, err := v.ParseRequest(frame); !errors.Is(err, ErrUnknownAPI) {
		t.Fatalf("before Enable: %v", err)
	}
	if err := v.Enable(GroupAPIs()...); err != nil {
		t.Fatal(err)
	}
	got, err := v.ParseRequest(frame)
	if err != nil {
		t.Fatalf("after Enable: %v", err)
	}
	if jg := got.Msg.(*kmsg.JoinGroupRequest); jg.Group != "g" || len(jg.Protocols) != 1 {
		t.Fatalf("decoded %+v", jg)
	}
	v.Disable(KeyJoinGroup)
	if _, err := v.ParseRequest(frame); !errors.Is(err, ErrUnknownAPI) {
		t.Fatalf("after Disable: %v", err)
	}
	var zero Versions
	if _, err := zero.ParseRequest(encodeRequest(sampleRequest(KeyMetadata, 1), 1, nil)); !errors.Is(err, ErrUnknownAPI) {
		t.Fatalf("zero Versions: %v", err)
	}
}

// ParseRequest must not copy the produce records: they alias the frame.
func TestParseRequestRecordsAliasFrame(t *testing.T) {
	frame := encodeRequest(sampleRequest(KeyProduce, 9), 1, nil)
	got, err := ParseRequest(frame)
	if err != nil {
		t.Fatal(err)
	}
	recs := got.Msg.(*kmsg.ProduceRequest).Topics[0].Partitions[0].Records
	idx := bytes.Index(frame, recs)
	if idx < 0 || &frame[idx] != &recs[0] {
		t.Fatal("records were copied out of the frame")
	}
}

func BenchmarkParseProduce(b *testing.B) {
	frame := encodeRequest(sampleRequest(KeyProduce, 9), 1, kmsg.StringPtr("bench"))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := ParseRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}
