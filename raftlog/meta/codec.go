package meta

import (
	"encoding/binary"
	"fmt"
)

// Primitive encodings shared by commands and image snapshots. All integers
// are big endian, fixed width. Strings and byte strings are a u32 length
// followed by the bytes. Lists are a u32 count followed by the elements.

// maxStringBytes bounds any decoded string (names, addresses, config values).
const maxStringBytes = 1 << 20

type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) i32(v int32)  { w.u32(uint32(v)) }
func (w *writer) i64(v int64)  { w.u64(uint64(v)) }
func (w *writer) id(v TopicID) { w.b = append(w.b, v[:]...) }

func (w *writer) boolean(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

func (w *writer) str(s string) {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) i32s(v []int32) {
	w.u32(uint32(len(v)))
	for _, x := range v {
		w.i32(x)
	}
}

// reader decodes with bounds checks. The first failure sticks in err and
// turns later reads into zero values, so decoders check err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) uint8 {
	if b := r.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) i32(what string) int32 { return int32(r.u32(what)) }
func (r *reader) i64(what string) int64 { return int64(r.u64(what)) }

func (r *reader) id(what string) TopicID {
	var id TopicID
	copy(id[:], r.take(16, what))
	return id
}

func (r *reader) boolean(what string) bool {
	switch r.u8(what) {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail(what + ": bool")
	return false
}

func (r *reader) str(what string) string {
	n := r.u32(what)
	if n > maxStringBytes {
		r.fail(what + ": length")
		return ""
	}
	return string(r.take(int(n), what))
}

// count reads a list length and checks it against the bytes left, given the
// smallest encoded element size, so a forged count cannot force a large
// allocation.
func (r *reader) count(minElem int, what string) int {
	n := r.u32(what)
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minElem) > uint64(len(r.b)) {
		r.fail(what + ": count")
		return 0
	}
	return int(n)
}

func (r *reader) i32s(what string) []int32 {
	n := r.count(4, what)
	if n == 0 {
		return nil
	}
	v := make([]int32, n)
	for i := range v {
		v[i] = r.i32(what)
	}
	return v
}

func (r *reader) end(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%s: %d trailing bytes", what, len(r.b)))
	}
}
