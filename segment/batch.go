package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a RecordBatch v2 header: everything before the
// first record.
const HeaderSize = 61

// Byte positions inside a RecordBatch v2 header (see doc.go for the diagram).
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthPrefix is what BatchLength does not count: baseOffset and the
	// length field itself.
	lengthPrefix = 12
	// minRecordBytes is the smallest possible encoded record: length,
	// attributes, timestamp delta, offset delta, key length, value length
	// and header count, one byte each.
	minRecordBytes = 7
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Sentinel errors. Each maps to one Kafka error code in the broker; the
// mapping is noted next to each.
var (
	// ErrCorrupt: CRC mismatch, or a length that is short, runs past the
	// buffer or disagrees with it. CORRUPT_MESSAGE (2).
	ErrCorrupt = errors.New("segment: corrupt record batch")
	// ErrInvalidRecord: a header field that cannot be right (negative
	// count, lastOffsetDelta+1 != count, a control batch from a producer,
	// a non-zero producer base offset). INVALID_RECORD (87).
	ErrInvalidRecord = errors.New("segment: invalid record batch")
	// ErrUnsupportedMagic: magic != 2. UNSUPPORTED_VERSION (35).
	ErrUnsupportedMagic = errors.New("segment: unsupported record batch magic")
	// ErrTooLarge: a batch above the configured maximum. MESSAGE_TOO_LARGE (10).
	ErrTooLarge = errors.New("segment: record batch too large")
	// ErrUnsupportedCodec: compression codec 5..7.
	// UNSUPPORTED_COMPRESSION_TYPE (76).
	ErrUnsupportedCodec = errors.New("segment: unsupported compression codec")
	// ErrOffsetOutOfRange: a read below the log start or above the log end.
	// OFFSET_OUT_OF_RANGE (1).
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrNonMonotonic: AppendReplica whose first offset is not the log end
	// offset, or whose batches are not contiguous, or whose leader epochs
	// go backwards.
	ErrNonMonotonic = errors.New("segment: non-monotonic replica append")
	// ErrStaleEpoch: a leader Append with an epoch below the latest epoch in
	// the leader-epoch cache. FENCED_LEADER_EPOCH (74).
	ErrStaleEpoch = errors.New("segment: stale leader epoch")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("segment: log closed")
	// ErrFailed: an earlier write or sync failed; the log refuses further
	// writes until it is reopened (the page cache state is unknown). The
	// error returned wraps both ErrFailed and the original cause.
	ErrFailed = errors.New("segment: log failed")
)

// castagnoli is the CRC-32C table. A local value keeps the package free of
// mutable package state beyond this read-only table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec in attribute bits 0-2.
type Codec int8

// Codecs defined by Kafka.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the Kafka name of the codec.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Header is a decoded RecordBatch v2 header.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the number of bytes the batch occupies: BatchLength + 12.
func (h Header) Size() int { return int(h.BatchLength) + lengthPrefix }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset following the batch.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec returns the compression codec (attribute bits 0-2).
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// Transactional reports attribute bit 4.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports attribute bit 5.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports attribute bit 3 (timestamp type).
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// ParseHeader decodes the first HeaderSize bytes of b. It checks only that
// b is long enough; it does not check the CRC, magic or lengths.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorrupt, len(b), HeaderSize)
	}
	return parseHeader(b), nil
}

func parseHeader(b []byte) Header {
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
}

// checkFraming checks what can be checked from the header alone: a length
// that fits in avail bytes, the size limit and the magic. It returns the
// batch size. maxBatchBytes <= 0 means no limit.
func checkFraming(h Header, avail, maxBatchBytes int) (int, error) {
	if h.BatchLength < HeaderSize-lengthPrefix {
		return 0, fmt.Errorf("%w: batch length %d below minimum %d", ErrCorrupt, h.BatchLength, HeaderSize-lengthPrefix)
	}
	size := h.Size()
	if maxBatchBytes > 0 && size > maxBatchBytes {
		return 0, fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, size, maxBatchBytes)
	}
	if h.Magic != 2 {
		return 0, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, h.Magic)
	}
	if size > avail {
		return 0, fmt.Errorf("%w: batch of %d bytes runs past the %d available", ErrCorrupt, size, avail)
	}
	return size, nil
}

// checkBody checks the CRC and the header fields of one framed batch b
// (len(b) == h.Size()).
func checkBody(h Header, b []byte) error {
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorrupt, got, h.CRC)
	}
	return checkFields(h, len(b))
}

// checkFields checks the header fields a CRC cannot vouch for.
func checkFields(h Header, size int) error {
	if c := h.Codec(); c > CodecZstd {
		return fmt.Errorf("%w: %d", ErrUnsupportedCodec, c)
	}
	if h.NumRecords < 0 {
		return fmt.Errorf("%w: record count %d", ErrInvalidRecord, h.NumRecords)
	}
	if h.LastOffsetDelta < 0 || int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrInvalidRecord, h.LastOffsetDelta, h.NumRecords)
	}
	if h.Codec() == CodecNone && int64(h.NumRecords)*minRecordBytes > int64(size-HeaderSize) {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrInvalidRecord, h.NumRecords, size-HeaderSize)
	}
	if h.BaseOffset < 0 {
		return fmt.Errorf("%w: negative base offset %d", ErrInvalidRecord, h.BaseOffset)
	}
	return nil
}

// ValidateBatch checks that b is exactly one well-formed RecordBatch v2:
// length, size limit, magic, CRC-32C (bytes 21..end), codec, record count
// and lastOffsetDelta. maxBatchBytes <= 0 means no limit. Errors wrap one of
// ErrCorrupt, ErrTooLarge, ErrUnsupportedMagic, ErrUnsupportedCodec or
// ErrInvalidRecord.
func ValidateBatch(b []byte, maxBatchBytes int) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	size, err := checkFraming(h, len(b), maxBatchBytes)
	if err != nil {
		return Header{}, err
	}
	if size != len(b) {
		return Header{}, fmt.Errorf("%w: batch of %d bytes in a %d-byte buffer", ErrCorrupt, size, len(b))
	}
	if err := checkBody(h, b); err != nil {
		return Header{}, err
	}
	return h, nil
}

// ValidateBatches checks that b is one or more concatenated batches, each
// as ValidateBatch checks it, with nothing left over. The returned slice
// holds at most len(b)/HeaderSize headers.
func ValidateBatches(b []byte, maxBatchBytes int) ([]Header, error) {
	var dst []Header
	if len(b) == 0 {
		return dst, fmt.Errorf("%w: no batches", ErrCorrupt)
	}
	for pos := 0; pos < len(b); {
		h, err := ParseHeader(b[pos:])
		if err != nil {
			return dst, fmt.Errorf("batch %d at byte %d: %w", len(dst), pos, err)
		}
		size, err := checkFraming(h, len(b)-pos, maxBatchBytes)
		if err != nil {
			return dst, fmt.Errorf("batch %d at byte %d: %w", len(dst), pos, err)
		}
		if err := checkBody(h, b[pos:pos+size]); err != nil {
			return dst, fmt.Errorf("batch %d at byte %d: %w", len(dst), pos, err)
		}
		dst = append(dst, h)
		pos += size
	}
	return dst, nil
}
