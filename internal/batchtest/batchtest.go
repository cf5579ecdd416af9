// Package batchtest builds valid Kafka RecordBatch v2 bytes for tests.
//
//	b := batchtest.Build(
//		batchtest.Record([]byte("k"), []byte("v")),
//		batchtest.Record(nil, []byte("w"), batchtest.Header{Key: "h", Value: []byte("x")}),
//		batchtest.Timestamp(1700000000000),
//		batchtest.Producer(7, 0, 0),
//	)
//
// Defaults: base offset 0, partition leader epoch -1, timestamp
// DefaultTimestamp, no producer (id -1, epoch -1, sequence -1),
// uncompressed, one record with value "v" when no record option is given.
// Record i gets offset delta i and timestamp delta i unless RecordAt sets
// the delta. The CRC-32C is computed over bytes 21..end, so the result
// passes segment.ValidateBatch and decodes with kmsg and every client.
package batchtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
)

// DefaultTimestamp is the base timestamp used when Timestamp is not given
// (2023-11-14T22:13:20Z in milliseconds).
const DefaultTimestamp int64 = 1_700_000_000_000

// Attribute bits of a RecordBatch v2.
const (
	CodecNone         int16 = 0
	CodecGzip         int16 = 1
	CodecSnappy       int16 = 2
	CodecLZ4          int16 = 3
	CodecZstd         int16 = 4
	AttrLogAppendTime int16 = 0x08
	AttrTransactional int16 = 0x10
	AttrControl       int16 = 0x20
)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

type record struct {
	key, value []byte // nil key/value encode as null (-1)
	headers    []Header
	tsDelta    int64
	hasTs      bool
}

type batch struct {
	baseOffset    int64
	leaderEpoch   int32
	attributes    int16
	gzip          bool
	baseTimestamp int64
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	records       []record
}

// Option configures Build.
type Option func(*batch)

// Record appends a record. A nil key or value is encoded as null.
func Record(key, value []byte, headers ...Header) Option {
	return func(b *batch) {
		b.records = append(b.records, record{key: key, value: value, headers: headers})
	}
}

// RecordAt appends a record with an explicit timestamp delta.
func RecordAt(tsDelta int64, key, value []byte, headers ...Header) Option {
	return func(b *batch) {
		b.records = append(b.records, record{key: key, value: value, headers: headers, tsDelta: tsDelta, hasTs: true})
	}
}

// Values appends one record per value, with null keys.
func Values(values ...string) Option {
	return func(b *batch) {
		for _, v := range values {
			b.records = append(b.records, record{value: []byte(v)})
		}
	}
}

// Filler appends n records whose values are size bytes of a repeating
// pattern, with null keys.
func Filler(n, size int) Option {
	return func(b *batch) {
		for i := 0; i < n; i++ {
			v := make([]byte, size)
			for j := range v {
				v[j] = byte('a' + (i+j)%26)
			}
			b.records = append(b.records, record{value: v})
		}
	}
}

// BaseOffset sets bytes 0-7.
func BaseOffset(o int64) Option { return func(b *batch) { b.baseOffset = o } }

// LeaderEpoch sets partitionLeaderEpoch (bytes 12-15).
func LeaderEpoch(e int32) Option { return func(b *batch) { b.leaderEpoch = e } }

// Timestamp sets the base timestamp (milliseconds).
func Timestamp(ms int64) Option { return func(b *batch) { b.baseTimestamp = ms } }

// Producer sets the producer id, epoch and base sequence (idempotence).
func Producer(id int64, epoch int16, baseSequence int32) Option {
	return func(b *batch) { b.producerID, b.producerEpoch, b.baseSequence = id, epoch, baseSequence }
}

// Attributes sets the raw attribute bits (codec in bits 0-2, then
// AttrLogAppendTime, AttrTransactional, AttrControl). It does not compress:
// with a codec other than none the records stay plain, which only code
// that never decompresses (the log) accepts. Use Gzip for real compression.
func Attributes(a int16) Option { return func(b *batch) { b.attributes = a } }

// Gzip compresses the records with gzip and sets the codec bits.
func Gzip() Option {
	return func(b *batch) {
		b.gzip = true
		b.attributes = b.attributes&^7 | CodecGzip
	}
}

// Build returns one RecordBatch v2.
func Build(opts ...Option) []byte {
	b := batch{
		leaderEpoch:   -1,
		baseTimestamp: DefaultTimestamp,
		producerID:    -1,
		producerEpoch: -1,
		baseSequence:  -1,
	}
	for _, o := range opts {
		o(&b)
	}
	if len(b.records) == 0 {
		b.records = []record{{value: []byte("v")}}
	}
	var body []byte
	maxDelta := int64(0)
	for i, r := range b.records {
		d := int64(i)
		if r.hasTs {
			d = r.tsDelta
		}
		if i == 0 || d > maxDelta {
			maxDelta = d
		}
		body = appendRecord(body, i, d, r)
	}
	if b.gzip {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(body)
		_ = w.Close()
		body = buf.Bytes()
	}
	be := binary.BigEndian
	out := make([]byte, 0, 61+len(body))
	out = be.AppendUint64(out, uint64(b.baseOffset))
	out = be.AppendUint32(out, uint32(61-12+len(body)))
	out = be.AppendUint32(out, uint32(b.leaderEpoch))
	out = append(out, 2)          // magic
	out = be.AppendUint32(out, 0) // crc, filled below
	out = be.AppendUint16(out, uint16(b.attributes))
	out = be.AppendUint32(out, uint32(len(b.records)-1))
	out = be.AppendUint64(out, uint64(b.baseTimestamp))
	out = be.AppendUint64(out, uint64(b.baseTimestamp+maxDelta))
	out = be.AppendUint64(out, uint64(b.producerID))
	out = be.AppendUint16(out, uint16(b.producerEpoch))
	out = be.AppendUint32(out, uint32(b.baseSequence))
	out = be.AppendUint32(out, uint32(len(b.records)))
	out = append(out, body...)
	Reseal(out)
	return out
}

// Concat joins batches into one buffer (a multi-batch produce payload).
func Concat(batches ...[]byte) []byte {
	var out []byte
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

// Reseal recomputes the CRC-32C of one batch after a test edited bytes
// 21..end. It does nothing to a buffer shorter than a header.
func Reseal(b []byte) {
	if len(b) < 61 {
		return
	}
	crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(b[17:], crc)
}

func appendRecord(dst []byte, offsetDelta int, tsDelta int64, r record) []byte {
	var rec []byte
	rec = append(rec, 0) // attributes
	rec = binary.AppendVarint(rec, tsDelta)
	rec = binary.AppendVarint(rec, int64(offsetDelta))
	rec = appendVarBytes(rec, r.key)
	rec = appendVarBytes(rec, r.value)
	rec = binary.AppendVarint(rec, int64(len(r.headers)))
	for _, h := range r.headers {
		rec = appendVarBytes(rec, []byte(h.Key))
		rec = appendVarBytes(rec, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(rec)))
	return append(dst, rec...)
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
