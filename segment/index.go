package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync/atomic"
)

// indexEntry maps the base offset of a batch to its file position.
type indexEntry struct {
	offset int64
	pos    int64
}

// timeEntry records that the batches up to and including the one starting
// at offset have timestamps at most ts, and the batch at offset has
// maxTimestamp == ts.
type timeEntry struct {
	ts     int64
	offset int64
}

// entryList is an append-only list with one writer and lock-free readers.
// The writer fills buf[n] and then publishes n+1; when buf is full it copies
// into a larger array and publishes that first. Readers load n, then buf,
// which is therefore at least n long, and never see an element being written.
// Truncation never rewrites a list: it builds a new segment with a copy.
type entryList[T any] struct {
	buf atomic.Pointer[[]T]
	n   atomic.Int64
}

func (l *entryList[T]) load() []T {
	n := l.n.Load()
	if n == 0 {
		return nil
	}
	return (*l.buf.Load())[:n]
}

// add appends v. Writer only.
func (l *entryList[T]) add(v T) {
	n := l.n.Load()
	var buf []T
	if p := l.buf.Load(); p != nil {
		buf = *p
	}
	if int(n) == len(buf) {
		grown := make([]T, 2*len(buf)+16)
		copy(grown, buf[:n])
		grown[n] = v
		l.buf.Store(&grown)
	} else {
		buf[n] = v
	}
	l.n.Store(n + 1)
}

// set replaces the (unpublished) list with a copy of vs. Used only while the
// list is private to its creator.
func (l *entryList[T]) set(vs []T) {
	buf := make([]T, len(vs), len(vs)+16)
	copy(buf, vs)
	buf = buf[:cap(buf)]
	l.buf.Store(&buf)
	l.n.Store(int64(len(vs)))
}

// floorIndex returns the last index entry whose offset is at most offset,
// or the segment start {base, 0}.
func floorIndex(entries []indexEntry, base, offset int64) indexEntry {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].offset > offset })
	if i == 0 {
		return indexEntry{offset: base, pos: 0}
	}
	return entries[i-1]
}

// Index file layout (big-endian), both files:
//
//	offset index (.index):    N × [ relOffset uint32 | pos uint32 ]
//	time index (.timeindex):  N × [ timestamp int64 | relOffset uint32 ]
//	trailer, 40 bytes:        logSize int64 | nextOffset int64 | maxTs int64 |
//	                          maxTsOffset int64 | crc32c uint32 | magic uint32
//
// The CRC covers the entries and the first 32 trailer bytes. logSize and
// nextOffset tie the index to one exact state of its log: a log file of a
// different size means the index describes something else and is rebuilt.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
	trailerSize     = 40
	indexMagic      = 0x534c5831 // "SLX1"
	// maxIndexFile bounds how much an index load may read: one entry per
	// batch in a maximal segment of minimal batches, plus the trailer.
	maxIndexFile = (1<<31/HeaderSize)*timeEntrySize + trailerSize
)

var errBadIndex = errors.New("index disagrees with its log")

// indexTrailer is the state an index file was written for.
type indexTrailer struct {
	logSize, nextOffset, maxTs, maxTsOffset int64
}

func appendTrailer(b []byte, t indexTrailer) []byte {
	be := binary.BigEndian
	b = be.AppendUint64(b, uint64(t.logSize))
	b = be.AppendUint64(b, uint64(t.nextOffset))
	b = be.AppendUint64(b, uint64(t.maxTs))
	b = be.AppendUint64(b, uint64(t.maxTsOffset))
	b = be.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return be.AppendUint32(b, indexMagic)
}

func encodeOffsetIndex(base int64, entries []indexEntry, t indexTrailer) []byte {
	b := make([]byte, 0, len(entries)*offsetEntrySize+trailerSize)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.offset-base))
		b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
	}
	return appendTrailer(b, t)
}

func encodeTimeIndex(base int64, entries []timeEntry, t indexTrailer) []byte {
	b := make([]byte, 0, len(entries)*timeEntrySize+trailerSize)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, uint32(e.offset-base))
	}
	return appendTrailer(b, t)
}

// splitIndex checks the framing, CRC and magic of an index file and returns
// its entry bytes and trailer.
func splitIndex(b []byte, entrySize int) ([]byte, indexTrailer, error) {
	if len(b) < trailerSize || (len(b)-trailerSize)%entrySize != 0 {
		return nil, indexTrailer{}, fmt.Errorf("%w: %d bytes", errBadIndex, len(b))
	}
	be := binary.BigEndian
	tr := b[len(b)-trailerSize:]
	if be.Uint32(tr[36:]) != indexMagic {
		return nil, indexTrailer{}, fmt.Errorf("%w: bad magic", errBadIndex)
	}
	if crc32.Checksum(b[:len(b)-8], castagnoli) != be.Uint32(tr[32:]) {
		return nil, indexTrailer{}, fmt.Errorf("%w: bad checksum", errBadIndex)
	}
	t := indexTrailer{
		logSize:     int64(be.Uint64(tr[0:])),
		nextOffset:  int64(be.Uint64(tr[8:])),
		maxTs:       int64(be.Uint64(tr[16:])),
		maxTsOffset: int64(be.Uint64(tr[24:])),
	}
	return b[:len(b)-trailerSize], t, nil
}

// decodeOffsetIndex parses and sanity-checks an offset index: entries
// strictly increasing in offset and position, inside the log it describes.
func decodeOffsetIndex(base int64, b []byte) ([]indexEntry, indexTrailer, error) {
	body, t, err := splitIndex(b, offsetEntrySize)
	if err != nil {
		return nil, t, err
	}
	entries := make([]indexEntry, 0, len(body)/offsetEntrySize)
	prev := indexEntry{offset: base - 1, pos: -1}
	for i := 0; i < len(body); i += offsetEntrySize {
		e := indexEntry{
			offset: base + int64(binary.BigEndian.Uint32(body[i:])),
			pos:    int64(binary.BigEndian.Uint32(body[i+4:])),
		}
		if e.offset <= prev.offset || e.pos <= prev.pos || e.pos >= t.logSize || e.offset >= t.nextOffset {
			return nil, t, fmt.Errorf("%w: entry %d (%d@%d) out of order", errBadIndex, i/offsetEntrySize, e.offset, e.pos)
		}
		entries = append(entries, e)
		prev = e
	}
	return entries, t, nil
}

// decodeTimeIndex parses and sanity-checks a time index: timestamps and
// offsets strictly increasing, below the trailer's next offset and maximum.
func decodeTimeIndex(base int64, b []byte) ([]timeEntry, indexTrailer, error) {
	body, t, err := splitIndex(b, timeEntrySize)
	if err != nil {
		return nil, t, err
	}
	entries := make([]timeEntry, 0, len(body)/timeEntrySize)
	prevTs, prevOff := int64(-1<<63), base-1
	for i := 0; i < len(body); i += timeEntrySize {
		e := timeEntry{
			ts:     int64(binary.BigEndian.Uint64(body[i:])),
			offset: base + int64(binary.BigEndian.Uint32(body[i+8:])),
		}
		if e.ts <= prevTs || e.offset <= prevOff || e.offset >= t.nextOffset || e.ts > t.maxTs {
			return nil, t, fmt.Errorf("%w: time entry %d out of order", errBadIndex, i/timeEntrySize)
		}
		entries = append(entries, e)
		prevTs, prevOff = e.ts, e.offset
	}
	return entries, t, nil
}
