package gossip

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func sampleMeta(id int32) NodeMeta {
	return NodeMeta{
		NodeID:      id,
		Internal:    "10.0.0.1:9093",
		Client:      "broker-1.example:9092",
		ClientPlain: "10.0.0.1:9094",
		HTTP:        "10.0.0.1:8080",
		Rack:        "eu-west-1a",
		Incarnation: 1<<40 + 7,
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []NodeMeta{{}, sampleMeta(1), sampleMeta(-1), {NodeID: 3, Incarnation: 1, Leaving: true}} {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%+v): %v", m, err)
		}
		var got NodeMeta
		if err := got.UnmarshalBinary(b); err != nil || got != m {
			t.Fatalf("UnmarshalBinary(%x) = %+v, %v, want %+v", b, got, err, m)
		}
	}
}

func TestMetaLayout(t *testing.T) {
	m := NodeMeta{NodeID: 0x01020304, Incarnation: 0x0a0b0c0d0e0f1011, Internal: "ab", Rack: "r", Leaving: true}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		1,          // version
		1,          // flags: leaving
		1, 2, 3, 4, // node id
		0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, // incarnation
		2, 'a', 'b', // internal
		0, 0, 0, // client, client plain, http
		1, 'r', // rack
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("MarshalBinary = %x, want %x", b, want)
	}
}

func TestMetaTooLarge(t *testing.T) {
	long := strings.Repeat("x", 256)
	if _, err := (NodeMeta{Rack: long}).MarshalBinary(); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("256-byte field: %v, want ErrMetaTooLarge", err)
	}
	f := strings.Repeat("y", 120) // 14 + 5×121 = 619 > 512
	m := NodeMeta{Internal: f, Client: f, ClientPlain: f, HTTP: f, Rack: f}
	if _, err := m.MarshalBinary(); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("619-byte meta: %v, want ErrMetaTooLarge", err)
	}
	f = strings.Repeat("y", 98) // 14 + 5×99 = 509: fits
	m = NodeMeta{Internal: f, Client: f, ClientPlain: f, HTTP: f, Rack: f}
	if b, err := m.MarshalBinary(); err != nil || len(b) > MaxMetaSize {
		t.Fatalf("509-byte meta: %d bytes, %v", len(b), err)
	}
}

func TestMetaDecodeErrors(t *testing.T) {
	good, _ := sampleMeta(1).MarshalBinary()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMetaCorrupt},
		{"version", append([]byte{2}, good[1:]...), ErrMetaVersion},
		{"short fixed", good[:13], ErrMetaCorrupt},
		{"missing field", good[:14], ErrMetaCorrupt},
		{"truncated string", good[:17], ErrMetaCorrupt},
		{"unknown flag", append([]byte{1, 2}, good[2:]...), ErrMetaCorrupt},
		{"oversize", make([]byte, MaxMetaSize+1), ErrMetaTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m NodeMeta
			if err := m.UnmarshalBinary(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("UnmarshalBinary(%x) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	// Appended bytes from a later revision are ignored.
	var m NodeMeta
	if err := m.UnmarshalBinary(append(append([]byte(nil), good...), 9, 9, 9)); err != nil || m != sampleMeta(1) {
		t.Fatalf("UnmarshalBinary with trailing bytes = %+v, %v", m, err)
	}
}

func FuzzMetaDecode(f *testing.F) {
	good, _ := sampleMeta(1).MarshalBinary()
	f.Add(good)
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m NodeMeta
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		re, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %x to %+v, which does not encode: %v", b, m, err)
		}
		if !bytes.HasPrefix(b, re) {
			t.Fatalf("decoded %x re-encodes to %x, not a prefix", b, re)
		}
	})
}
