package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// RecordHeaderSize is the fixed prefix of every record: length (4) + CRC-32C (4).
const RecordHeaderSize = 8

// DefaultMaxRecordBytes bounds a single record's type+payload. A length field
// above the bound is treated as corruption, so a damaged header never causes a
// large allocation.
const DefaultMaxRecordBytes = 64 << 20

// RecordType says what a record's payload holds.
type RecordType uint8

const (
	// TypeEntry holds one raft log entry (see EncodeEntry).
	TypeEntry RecordType = 1
	// TypeHardState holds a raft HardState (see EncodeHardState).
	TypeHardState RecordType = 2
	// TypeSnapshot marks that the snapshot file with this index and term is
	// durable and the log before it may be read from that file (see
	// EncodeSnapshotMarker).
	TypeSnapshot RecordType = 3
	// TypeSnapshotFile is the single record of a snapshot file; the WAL never
	// holds it, but the framing is shared.
	TypeSnapshotFile RecordType = 4
	// TypeIdentity is the single record of a data directory's identity file.
	TypeIdentity RecordType = 5
)

func (t RecordType) String() string {
	switch t {
	case TypeEntry:
		return "entry"
	case TypeHardState:
		return "hardstate"
	case TypeSnapshot:
		return "snapshot"
	case TypeSnapshotFile:
		return "snapshot-file"
	case TypeIdentity:
		return "identity"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Record is one framed WAL record. Data is the payload without the type byte.
type Record struct {
	Type RecordType
	Data []byte
}

var (
	// ErrTorn reports a record cut short: the buffer ends before the length
	// field or before the bytes the length announces. At the tail of the last
	// segment this is the mark of a crash mid-write.
	ErrTorn = errors.New("wal: torn record")
	// ErrCorrupt reports a record whose CRC does not match, whose length is
	// out of bounds, or whose payload does not decode.
	ErrCorrupt = errors.New("wal: corrupt record")
	// ErrClosed is returned by operations on a closed WAL.
	ErrClosed = errors.New("wal: closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendRecord appends r, framed, to dst and returns the extended slice.
//
//	0      4      8    9
//	+------+------+----+-----------------+
//	| len  | crc  | ty | payload ...     |
//	+------+------+----+-----------------+
//	len = 1 + len(payload), little endian
//	crc = CRC-32C (Castagnoli) over ty+payload, little endian
func AppendRecord(dst []byte, r Record) []byte {
	n := 1 + len(r.Data)
	var hdr [RecordHeaderSize + 1]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(n))
	hdr[8] = byte(r.Type)
	crc := crc32.Update(0, castagnoli, hdr[8:9])
	crc = crc32.Update(crc, castagnoli, r.Data)
	binary.LittleEndian.PutUint32(hdr[4:8], crc)
	dst = append(dst, hdr[:]...)
	return append(dst, r.Data...)
}

// DecodeRecord decodes the record at the start of b. It returns the record
// (whose Data aliases b), the number of bytes consumed, or ErrTorn when b is
// too short to hold the record, or ErrCorrupt when the length is out of
// bounds (0 or above maxBytes) or the CRC does not match. maxBytes <= 0 means
// DefaultMaxRecordBytes.
func DecodeRecord(b []byte, maxBytes int) (Record, int, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRecordBytes
	}
	if len(b) < RecordHeaderSize {
		return Record{}, 0, fmt.Errorf("%w: %d header bytes", ErrTorn, len(b))
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 || uint64(n) > uint64(maxBytes) {
		return Record{}, 0, fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	end := uint64(RecordHeaderSize) + uint64(n)
	if uint64(len(b)) < end {
		return Record{}, 0, fmt.Errorf("%w: need %d bytes, have %d", ErrTorn, end, len(b))
	}
	body := b[RecordHeaderSize:end]
	want := binary.LittleEndian.Uint32(b[4:8])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return Record{}, 0, fmt.Errorf("%w: crc %08x, want %08x", ErrCorrupt, got, want)
	}
	return Record{Type: RecordType(body[0]), Data: body[1:]}, int(end), nil
}
