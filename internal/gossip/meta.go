package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// MetaVersion is the node meta encoding version this package writes.
const MetaVersion = 1

// MaxMetaSize is the largest encoded NodeMeta: memberlist's limit.
const MaxMetaSize = memberlist.MetaMaxSize

// maxMetaString bounds one string field (it has a one-byte length).
const maxMetaString = 255

const metaFixed = 1 + 1 + 4 + 8 // version, flags, node id, incarnation

// metaFlagLeaving marks a broker on its way out (see Membership.Leave).
const metaFlagLeaving = 1 << 0

var (
	// ErrMetaTooLarge reports a NodeMeta whose encoding exceeds MaxMetaSize
	// or a string field longer than 255 bytes.
	ErrMetaTooLarge = errors.New("gossip: node meta too large")
	// ErrMetaCorrupt reports node meta bytes that do not decode.
	ErrMetaCorrupt = errors.New("gossip: node meta corrupt")
	// ErrMetaVersion reports node meta of an unknown encoding version.
	ErrMetaVersion = errors.New("gossip: unknown node meta version")
)

// NodeMeta is what a broker tells the others about itself through
// memberlist's node meta. Addresses are host:port strings.
type NodeMeta struct {
	NodeID      int32
	Internal    string // raft + replication listener (package link)
	Client      string // TLS Kafka listener
	ClientPlain string // plaintext Kafka listener, may be empty
	HTTP        string // /metrics, /healthz, /readyz
	Rack        string // may be empty
	// Incarnation is the broker's incarnation from its data directory; it
	// grows on every restart, so a restarted broker is told apart from its
	// previous life. (memberlist keeps its own, unrelated incarnation.)
	Incarnation uint64
	// Leaving is set by Membership.Leave just before memberlist's leave
	// message; it is how other members tell a graceful leave from a crash
	// (memberlist does not expose the difference).
	Leaving bool
}

func (m NodeMeta) strings() [5]string {
	return [5]string{m.Internal, m.Client, m.ClientPlain, m.HTTP, m.Rack}
}

// MarshalBinary encodes m (see doc.go for the layout). It fails with
// ErrMetaTooLarge rather than produce more than MaxMetaSize bytes.
func (m NodeMeta) MarshalBinary() ([]byte, error) {
	size := metaFixed
	for i, s := range m.strings() {
		if len(s) > maxMetaString {
			return nil, fmt.Errorf("%w: field %d is %d bytes (max %d)", ErrMetaTooLarge, i, len(s), maxMetaString)
		}
		size += 1 + len(s)
	}
	if size > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrMetaTooLarge, size, MaxMetaSize)
	}
	b := make([]byte, metaFixed, size)
	b[0] = MetaVersion
	if m.Leaving {
		b[1] |= metaFlagLeaving
	}
	binary.BigEndian.PutUint32(b[2:6], uint32(m.NodeID))
	binary.BigEndian.PutUint64(b[6:14], m.Incarnation)
	for _, s := range m.strings() {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

// UnmarshalBinary decodes b into m. Bytes after the last known field are
// ignored, so a later minor revision may append fields without a new
// version; an incompatible change bumps the version byte.
func (m *NodeMeta) UnmarshalBinary(b []byte) error {
	if len(b) > MaxMetaSize {
		return fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	if len(b) < 1 {
		return fmt.Errorf("%w: empty", ErrMetaCorrupt)
	}
	if b[0] != MetaVersion {
		return fmt.Errorf("%w: %d", ErrMetaVersion, b[0])
	}
	if len(b) < metaFixed {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrMetaCorrupt, len(b), metaFixed)
	}
	var out NodeMeta
	flags := b[1]
	if flags&^metaFlagLeaving != 0 {
		return fmt.Errorf("%w: unknown flags %#02x", ErrMetaCorrupt, flags)
	}
	out.Leaving = flags&metaFlagLeaving != 0
	out.NodeID = int32(binary.BigEndian.Uint32(b[2:6]))
	out.Incarnation = binary.BigEndian.Uint64(b[6:14])
	rest := b[metaFixed:]
	fields := [5]*string{&out.Internal, &out.Client, &out.ClientPlain, &out.HTTP, &out.Rack}
	for i, f := range fields {
		if len(rest) < 1 {
			return fmt.Errorf("%w: missing field %d", ErrMetaCorrupt, i)
		}
		n := int(rest[0])
		if len(rest)-1 < n {
			return fmt.Errorf("%w: field %d wants %d bytes, %d left", ErrMetaCorrupt, i, n, len(rest)-1)
		}
		*f = string(rest[1 : 1+n])
		rest = rest[1+n:]
	}
	*m = out
	return nil
}
