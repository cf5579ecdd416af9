package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/sluice-io/sluice/segment"
)

// RecordBatch v2 layout (big-endian), as stored by the broker:
//
//	0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 | 17 crc u32
//	21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64
//	43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 | 57 numRecords i32 | 61 records...
//
// The CRC-32C (Castagnoli) covers bytes 21 to the end. The header is
// segment.HeaderSize bytes; these offsets are the fields BuildBatch writes.
const (
	offBatchLength     = 8
	offLastOffsetDelta = 23
	offCRC             = 17
	offAttributes      = 21
	batchLengthPrefix  = 12 // baseOffset + batchLength: the bytes batchLength does not count
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBatchTooSmall reports a batch size limit that cannot hold one record.
var ErrBatchTooSmall = errors.New("bench: batch limit below one record")

// Batch is one pre-built, uncompressed RecordBatch v2 with baseOffset 0.
type Batch struct {
	Bytes      []byte
	Records    int   // records in the batch
	ValueBytes int64 // sum of the record values
}

// BuildBatch builds a batch of at most maxBytes bytes (header included)
// holding as many records with valueBytes-byte values (no key, no headers)
// as fit. Timestamps are ts for every record. The values are a repeating
// non-zero pattern (compression is off, so the content does not matter).
func BuildBatch(maxBytes, valueBytes int, ts int64) (Batch, error) {
	if valueBytes < 0 || maxBytes < segment.HeaderSize {
		return Batch{}, fmt.Errorf("%w: max %d, value %d", ErrBatchTooSmall, maxBytes, valueBytes)
	}
	value := make([]byte, valueBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	b := make([]byte, segment.HeaderSize, maxBytes)
	var rec []byte
	n := 0
	for {
		rec = appendRecord(rec[:0], n, value)
		if len(b)+len(rec) > maxBytes || n == 1<<31-1 {
			break
		}
		b = append(b, rec...)
		n++
	}
	if n == 0 {
		return Batch{}, fmt.Errorf("%w: max %d, one record takes %d", ErrBatchTooSmall, maxBytes, segment.HeaderSize+len(rec))
	}
	be := binary.BigEndian
	be.PutUint64(b[0:], 0)                                             // baseOffset: the broker stamps it
	be.PutUint32(b[offBatchLength:], uint32(len(b)-batchLengthPrefix)) // batchLength
	be.PutUint32(b[12:], 0xffffffff)                                   // partitionLeaderEpoch -1
	b[16] = 2                                                          // magic
	be.PutUint16(b[offAttributes:], 0)                                 // no codec, CreateTime
	be.PutUint32(b[offLastOffsetDelta:], uint32(n-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], 0xffffffffffffffff) // producerId -1: not idempotent
	be.PutUint16(b[51:], 0xffff)             // producerEpoch -1
	be.PutUint32(b[53:], 0xffffffff)         // baseSequence -1
	be.PutUint32(b[57:], uint32(n))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return Batch{Bytes: b, Records: n, ValueBytes: int64(n) * int64(valueBytes)}, nil
}

// appendRecord appends one record: length, attributes, timestampDelta 0,
// offsetDelta, key -1 (null), value, zero headers. Lengths and deltas are
// zigzag varints.
func appendRecord(dst []byte, offsetDelta int, value []byte) []byte {
	var body [3 * binary.MaxVarintLen64]byte
	p := body[:0]
	p = append(p, 0)                               // attributes
	p = binary.AppendVarint(p, 0)                  // timestampDelta
	p = binary.AppendVarint(p, int64(offsetDelta)) // offsetDelta
	p = binary.AppendVarint(p, -1)                 // key length: null
	p = binary.AppendVarint(p, int64(len(value)))
	size := len(p) + len(value) + 1 // + header count
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, p...)
	dst = append(dst, value...)
	return binary.AppendVarint(dst, 0) // headers
}

// batchSpan walks the whole batches at the start of records (a fetch
// response's record set) and returns how many bytes they take and the last
// offset of the last one. A partial trailing batch, which a broker may send,
// is not counted. ok is false when no whole batch is present.
func batchSpan(records []byte) (n int, lastOffset int64, ok bool) {
	for len(records)-n >= segment.HeaderSize {
		h, err := segment.ParseHeader(records[n:])
		if err != nil {
			break
		}
		size := h.Size()
		if size < segment.HeaderSize || size > len(records)-n {
			break
		}
		lastOffset = h.LastOffset()
		n += size
		ok = true
	}
	return n, lastOffset, ok
}
