package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// splitFrame checks the size prefix and correlation id and returns the rest.
func splitFrame(t *testing.T, frame []byte, corr int32) []byte {
	t.Helper()
	if len(frame) < 8 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("size prefix %d, body %d", n, len(frame)-4)
	}
	if got := int32(binary.BigEndian.Uint32(frame[4:])); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	return frame[8:]
}

func TestAppendResponseHeaderTags(t *testing.T) {
	cases := []struct {
		name    string
		h       Header
		resp    kmsg.Response
		tagByte bool
	}{
		{"metadata v8 classic", Header{Key: KeyMetadata, Version: 8, CorrelationID: 3}, kmsg.NewPtrMetadataResponse(), false},
		{"metadata v9 flexible", Header{Key: KeyMetadata, Version: 9, CorrelationID: 3}, kmsg.NewPtrMetadataResponse(), true},
		{"produce v9 flexible", Header{Key: KeyProduce, Version: 9, CorrelationID: -1}, kmsg.NewPtrProduceResponse(), true},
		{"api versions v3 never tagged", Header{Key: KeyApiVersions, Version: 3, CorrelationID: 8}, kmsg.NewPtrApiVersionsResponse(), false},
		{"api versions v0", Header{Key: KeyApiVersions, Version: 0, CorrelationID: 8}, kmsg.NewPtrApiVersionsResponse(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("existing")
			frame := AppendResponse(append([]byte{}, prefix...), tc.h, tc.resp)
			if !bytes.HasPrefix(frame, prefix) {
				t.Fatal("dst prefix overwritten")
			}
			body := splitFrame(t, frame[len(prefix):], tc.h.CorrelationID)
			if tc.resp.GetVersion() != tc.h.Version {
				t.Fatalf("resp version %d, want %d", tc.resp.GetVersion(), tc.h.Version)
			}
			want := tc.resp.AppendTo(nil)
			if tc.tagByte {
				want = append([]byte{0}, want...)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("body %x, want %x", body, want)
			}
		})
	}
}

func TestAPIVersionsError(t *testing.T) {
	h := Header{Key: KeyApiVersions, Version: 7, CorrelationID: 99, Flexible: true}
	body := splitFrame(t, APIVersionsError(h), 99)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode v0: %v", err)
	}
	if resp.ErrorCode != CodeUnsupportedVersion {
		t.Fatalf("error code %d", resp.ErrorCode)
	}
	want := SupportedVersions()
	if len(resp.ApiKeys) != len(want) {
		t.Fatalf("%d api keys, want %d", len(resp.ApiKeys), len(want))
	}
	for i := range want {
		g, w := resp.ApiKeys[i], want[i]
		if g.ApiKey != w.ApiKey || g.MinVersion != w.MinVersion || g.MaxVersion != w.MaxVersion {
			t.Fatalf("api key %d: %+v, want %+v", i, g, w)
		}
	}
	// v0 body exactly: error code, then the array; nothing else.
	if len(body) != 2+4+6*len(want) {
		t.Fatalf("v0 body is %d bytes", len(body))
	}
}

func TestVersionsAPIVersionsResponse(t *testing.T) {
	v := DefaultVersions()
	if err := v.Enable(GroupAPIs()...); err != nil {
		t.Fatal(err)
	}
	resp := v.APIVersionsResponse()
	frame := AppendResponse(nil, Header{Key: KeyApiVersions, Version: 4, CorrelationID: 1}, resp)
	dec := kmsg.NewPtrApiVersionsResponse()
	dec.Version = 4
	if err := dec.ReadFrom(splitFrame(t, frame, 1)); err != nil {
		t.Fatal(err)
	}
	if len(dec.ApiKeys) != len(SupportedVersions())+len(GroupAPIs()) {
		t.Fatalf("%d keys", len(dec.ApiKeys))
	}
}
