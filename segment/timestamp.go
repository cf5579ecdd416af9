package segment

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// maxRecordScanBytes bounds the (decompressed) record bytes that
// OffsetForTimestamp reads from one batch, and the compressed bytes it
// buffers for snappy. A batch that needs more is answered at batch
// granularity, so a decompression bomb costs at most this much.
const maxRecordScanBytes = 64 << 20

// xerialMagic opens a snappy stream framed the way the Java client (via
// snappy-java) writes it: the magic, then a version and a compatible
// version (int32 each), then chunks of int32 length + raw snappy block.
const xerialMagic = "\x82SNAPPY\x00"

const xerialHeaderSize = len(xerialMagic) + 8

// errScanLimit: the record walk would pass maxRecordScanBytes or the end of
// the records section.
var errScanLimit = errors.New("segment: record scan limit")

// recordSource is a byte stream of records.
type recordSource interface {
	io.Reader
	io.ByteReader
}

// boundedSource reads at most left bytes from src.
type boundedSource struct {
	src  recordSource
	left int64
}

func (b *boundedSource) ReadByte() (byte, error) {
	if b.left <= 0 {
		return 0, errScanLimit
	}
	c, err := b.src.ReadByte()
	if err != nil {
		return 0, err
	}
	b.left--
	return c, nil
}

func (b *boundedSource) skip(n int64) error {
	if n < 0 || n > b.left {
		return errScanLimit
	}
	if d, ok := b.src.(interface{ Discard(int) (int, error) }); ok { // bufio.Reader
		m, err := d.Discard(int(n))
		b.left -= int64(m)
		return err
	}
	m, err := io.CopyN(io.Discard, b.src, n)
	b.left -= m
	return err
}

// firstRecordAtOrAfter walks the records of one batch in offset order and
// returns the offset and timestamp of the first record whose timestamp is
// >= ts. It reads at most budget bytes and at most lastOffsetDelta+1
// records. ok is false on any decode problem, on reaching the budget, or
// when no record qualifies; it never panics, whatever the bytes.
//
// A record is: length varint (bytes that follow), attributes int8,
// timestampDelta varlong, offsetDelta varint, then key, value and headers,
// which the walk skips by the length.
func firstRecordAtOrAfter(src recordSource, budget int64, baseOffset, baseTimestamp int64, lastOffsetDelta int32, ts int64) (offset, timestamp int64, ok bool) {
	return firstRecordFrom(src, budget, baseOffset, baseTimestamp, lastOffsetDelta, ts, baseOffset)
}

// firstRecordFrom is firstRecordAtOrAfter counting only records at or
// above minOffset (the log start, which may lie inside the batch).
func firstRecordFrom(src recordSource, budget int64, baseOffset, baseTimestamp int64, lastOffsetDelta int32, ts, minOffset int64) (offset, timestamp int64, ok bool) {
	if lastOffsetDelta < 0 {
		return 0, 0, false
	}
	b := &boundedSource{src: src, left: budget}
	for i := int64(0); i <= int64(lastOffsetDelta); i++ {
		length, err := binary.ReadVarint(b)
		if err != nil || length < minRecordBytes-1 || length > b.left {
			return 0, 0, false
		}
		start := b.left
		if _, err := b.ReadByte(); err != nil { // attributes
			return 0, 0, false
		}
		tsDelta, err := binary.ReadVarint(b)
		if err != nil {
			return 0, 0, false
		}
		offDelta, err := binary.ReadVarint(b)
		if err != nil || offDelta < 0 || offDelta > int64(lastOffsetDelta) {
			return 0, 0, false
		}
		used := start - b.left
		if used > length {
			return 0, 0, false
		}
		rts, ok := addTimestamp(baseTimestamp, tsDelta)
		if !ok {
			return 0, 0, false
		}
		if rts >= ts && baseOffset+offDelta >= minOffset {
			return baseOffset + offDelta, rts, true
		}
		if err := b.skip(length - used); err != nil {
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// addTimestamp adds a record's delta to the base timestamp, refusing
// overflow.
func addTimestamp(base, delta int64) (int64, bool) {
	s := base + delta
	if (delta > 0 && s < base) || (delta < 0 && s > base) {
		return 0, false
	}
	return s, true
}

// recordInBatch answers OffsetForTimestamp inside the batch h at pos in f,
// whose max timestamp is >= ts and whose last offset is >= minOffset (the
// log start): the first record (in offset order) at or above minOffset
// whose timestamp is >= ts. LogAppendTime batches, unknown codecs, bytes
// that do not decode, batches above the scan limit, and a batch holding
// the log start whose qualifying records all lie below it give the batch
// base offset (raised to minOffset) and max timestamp.
func recordInBatch(f io.ReaderAt, pos int64, h Header, ts, minOffset int64) (int64, int64) {
	fallback := max(h.BaseOffset, minOffset)
	if h.LogAppendTime() {
		return fallback, h.MaxTimestamp
	}
	n := int64(h.Size()) - HeaderSize
	if n <= 0 {
		return fallback, h.MaxTimestamp
	}
	section := io.NewSectionReader(f, pos+HeaderSize, n)
	src, budget, closeFn, err := openRecords(h.Codec(), section, n)
	if err != nil {
		return fallback, h.MaxTimestamp
	}
	defer closeFn()
	off, t, ok := firstRecordFrom(src, budget, h.BaseOffset, h.BaseTimestamp, h.LastOffsetDelta, ts, minOffset)
	if !ok {
		return fallback, h.MaxTimestamp
	}
	return off, t
}

// openRecords returns a stream of the records section's plain bytes, the
// number of bytes that may be read from it, and a function releasing the
// decoder.
func openRecords(c Codec, section *io.SectionReader, n int64) (recordSource, int64, func(), error) {
	nop := func() {}
	switch c {
	case CodecNone:
		return bufio.NewReaderSize(section, 4096), n, nop, nil
	case CodecGzip:
		zr, err := gzip.NewReader(bufio.NewReaderSize(section, 4096))
		if err != nil {
			return nil, 0, nil, err
		}
		return bufio.NewReaderSize(zr, 4096), maxRecordScanBytes, func() { _ = zr.Close() }, nil
	case CodecSnappy:
		if n > maxRecordScanBytes {
			return nil, 0, nil, errScanLimit
		}
		buf := make([]byte, n)
		if _, err := section.ReadAt(buf, 0); err != nil {
			return nil, 0, nil, err
		}
		plain, err := decodeSnappy(buf, maxRecordScanBytes)
		if err != nil {
			return nil, 0, nil, err
		}
		return bytes.NewReader(plain), int64(len(plain)), nop, nil
	case CodecLZ4:
		zr := lz4.NewReader(section)
		return bufio.NewReaderSize(zr, 4096), maxRecordScanBytes, nop, nil
	case CodecZstd:
		zr, err := zstd.NewReader(section,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(maxRecordScanBytes),
			zstd.WithDecoderMaxWindow(maxRecordScanBytes))
		if err != nil {
			return nil, 0, nil, err
		}
		return bufio.NewReaderSize(zr, 4096), maxRecordScanBytes, zr.Close, nil
	}
	return nil, 0, nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, c)
}

// decodeSnappy decodes a Kafka snappy records section: xerial-framed (Java
// clients) or one raw snappy block (librdkafka, franz-go). The output is at
// most limit bytes; more gives errScanLimit.
func decodeSnappy(src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderSize || string(src[:len(xerialMagic)]) != xerialMagic {
		return decodeSnappyBlock(nil, src, limit)
	}
	var out []byte
	p := src[xerialHeaderSize:]
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: truncated xerial chunk length", ErrCorrupt)
		}
		size := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(size) > uint64(len(p)) {
			return nil, fmt.Errorf("%w: xerial chunk of %d bytes past end", ErrCorrupt, size)
		}
		var err error
		if out, err = decodeSnappyBlock(out, p[:size], limit); err != nil {
			return nil, err
		}
		p = p[size:]
	}
	return out, nil
}

// decodeSnappyBlock appends the decoding of one raw snappy block to dst,
// keeping the total within limit.
func decodeSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	dl, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if dl < 0 || dl > limit-len(dst) {
		return nil, errScanLimit
	}
	out := make([]byte, dl)
	dec, err := snappy.Decode(out, block)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if dst == nil {
		return dec, nil
	}
	return append(dst, dec...), nil
}
