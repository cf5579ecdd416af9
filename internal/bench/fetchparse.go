package bench

import (
	"encoding/binary"
	"fmt"
)

// reader decodes the few Kafka primitives the fetch-response parser needs.
// The first error sticks; later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: fetch response truncated at %s", ErrProtocol, what)
	}
	r.b = nil
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) i16(what string) int16 {
	b := r.take(2, what)
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

func (r *reader) i32(what string) int32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

func (r *reader) i64(what string) int64 {
	b := r.take(8, what)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// compactLen reads a compact length (uvarint n+1; 0 = null) and returns n,
// or -1 for null. Lengths beyond the remaining bytes fail.
func (r *reader) compactLen(what string) int {
	v := r.uvarint(what)
	if r.err != nil || v == 0 {
		return -1
	}
	if v-1 > uint64(len(r.b)) {
		r.fail(what)
		return -1
	}
	return int(v - 1)
}

// skipTags skips a tagged-field section.
func (r *reader) skipTags() {
	n := r.uvarint("tag count")
	for i := uint64(0); i < n && r.err == nil; i++ {
		r.uvarint("tag key")
		size := r.uvarint("tag size")
		if size > uint64(len(r.b)) {
			r.fail("tag body")
			return
		}
		r.take(int(size), "tag body")
	}
}

// fetchPartition is what the consumer loop needs from a fetch response.
type fetchPartition struct {
	TopErr        int16
	Err           int16
	HighWatermark int64
	Records       []byte // aliases the response buffer
}

// fetchVersion is the Fetch version the benchmark speaks: flexible, topics
// by name (v13 would need topic ids from Metadata).
const fetchVersion = 12

// parseFetchV12 reads the first partition of the first topic of a Fetch v12
// response body (after the response header). Records are not decoded.
func parseFetchV12(body []byte) (fetchPartition, error) {
	r := reader{b: body}
	var out fetchPartition
	r.i32("throttle")
	out.TopErr = r.i16("error code")
	r.i32("session id")
	nTopics := r.compactLen("topics")
	if r.err != nil {
		return out, r.err
	}
	if out.TopErr != 0 || nTopics < 1 {
		return out, nil
	}
	r.take(r.compactLen("topic name"), "topic name")
	if n := r.compactLen("partitions"); n < 1 {
		if r.err == nil {
			r.fail("partitions (none)")
		}
		return out, r.err
	}
	r.i32("partition")
	out.Err = r.i16("partition error")
	out.HighWatermark = r.i64("high watermark")
	r.i64("last stable offset")
	r.i64("log start offset")
	aborted := r.compactLen("aborted transactions")
	for i := 0; i < aborted && r.err == nil; i++ {
		r.i64("aborted producer id")
		r.i64("aborted first offset")
		r.skipTags()
	}
	r.i32("preferred read replica")
	if n := r.compactLen("records"); n > 0 {
		out.Records = r.take(n, "records")
	}
	return out, r.err
}
