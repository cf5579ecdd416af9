package producerstate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"
)

// SnapshotVersion is the snapshot format version written by this package.
const SnapshotVersion = 1

// MinSnapshotSize is the size of a snapshot with no producers.
const MinSnapshotSize = snapshotHeaderSize + snapshotTrailerSize

// Snapshot layout sizes (see doc.go for the diagram).
const (
	snapshotHeaderSize  = 20 // magic 4, version 2, reserved 2, offset 8, count 4
	producerHeaderSize  = 11 // producer id 8, epoch 2, batch count 1
	batchRecordSize     = 33 // first seq 4, last seq 4, first offset 8, last offset 8, max ts 8, flags 1
	snapshotTrailerSize = 4  // CRC-32C

	batchFlagTransactional = 1 << 0
	batchFlagsKnown        = batchFlagTransactional

	// preallocLimit caps the map size hint taken from a snapshot's producer
	// count, so that a lying count cannot make the reader allocate more than
	// the bytes actually present justify.
	preallocLimit = 1024
)

var snapshotMagic = [4]byte{'S', 'L', 'P', 'S'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorruptSnapshot: a snapshot failed its CRC, is truncated, has
	// trailing bytes, an unknown version or magic, or inconsistent contents.
	// The broker then rebuilds the state by scanning the log.
	ErrCorruptSnapshot = errors.New("producerstate: corrupt snapshot")
	// ErrSnapshotState: the state cannot be written as a snapshot at the
	// requested offset (a retained batch ends at or beyond that offset, or
	// batch offsets are negative or not increasing).
	ErrSnapshotState = errors.New("producerstate: state inconsistent with snapshot offset")
)

// SnapshotSize returns the encoded size of s in bytes.
func (s *State) SnapshotSize() int {
	n := MinSnapshotSize
	for _, e := range s.producers {
		n += producerHeaderSize + e.n*batchRecordSize
	}
	return n
}

// AppendSnapshot appends the snapshot encoding of s, taken at log offset
// offset (every retained batch must end below offset), to dst. Producers are
// written in ascending id order, so equal states encode to equal bytes.
func (s *State) AppendSnapshot(dst []byte, offset int64) ([]byte, error) {
	if offset < 0 {
		return dst, fmt.Errorf("snapshot offset %d: %w", offset, ErrSnapshotState)
	}
	start := len(dst)
	dst = slices.Grow(dst, s.SnapshotSize())
	dst = append(dst, snapshotMagic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, SnapshotVersion)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.producers)))
	for _, pid := range slices.Sorted(maps.Keys(s.producers)) {
		e := s.producers[pid]
		dst = binary.BigEndian.AppendUint64(dst, uint64(pid))
		dst = binary.BigEndian.AppendUint16(dst, uint16(e.epoch))
		dst = append(dst, byte(e.n))
		prevLast := int64(-1)
		for i := range e.n {
			b := &e.batches[i]
			if b.firstOffset <= prevLast || b.lastOffset < b.firstOffset || b.lastOffset >= offset {
				return dst[:start], fmt.Errorf("producer %d batch [%d, %d] at snapshot offset %d: %w",
					pid, b.firstOffset, b.lastOffset, offset, ErrSnapshotState)
			}
			prevLast = b.lastOffset
			dst = binary.BigEndian.AppendUint32(dst, uint32(b.firstSeq))
			dst = binary.BigEndian.AppendUint32(dst, uint32(b.lastSeq))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.firstOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.lastOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.maxTimestamp))
			var flags byte
			if b.transactional {
				flags |= batchFlagTransactional
			}
			dst = append(dst, flags)
		}
	}
	crc := crc32.Checksum(dst[start:], castagnoli)
	return binary.BigEndian.AppendUint32(dst, crc), nil
}

// WriteSnapshot writes the snapshot encoding of s taken at offset to w.
func (s *State) WriteSnapshot(w io.Writer, offset int64) error {
	b, err := s.AppendSnapshot(nil, offset)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// DecodeSnapshot decodes a snapshot held in memory. It returns the state and
// the log offset the snapshot was taken at. Malformed input yields an error
// wrapping ErrCorruptSnapshot; it never panics, and allocates at most in
// proportion to len(b).
func DecodeSnapshot(b []byte) (*State, int64, error) {
	return decodeSnapshot(bytes.NewReader(b))
}

// ReadSnapshot reads one snapshot from r, which must end right after it.
// Truncated, trailing or inconsistent data yields an error wrapping
// ErrCorruptSnapshot; an error from r itself is returned wrapped as is.
// Memory use is proportional to the bytes actually read, whatever the
// header claims.
func ReadSnapshot(r io.Reader) (*State, int64, error) {
	return decodeSnapshot(bufio.NewReaderSize(r, 32<<10))
}

// snapReader reads fixed-size fields and keeps a running CRC of them.
type snapReader struct {
	r   io.Reader
	crc uint32
	buf [batchRecordSize]byte
}

func (sr *snapReader) next(n int) ([]byte, error) {
	b := sr.buf[:n]
	if _, err := io.ReadFull(sr.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated snapshot: %w", ErrCorruptSnapshot)
		}
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	sr.crc = crc32.Update(sr.crc, castagnoli, b)
	return b, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorruptSnapshot)
}

func decodeSnapshot(r io.Reader) (*State, int64, error) {
	sr := &snapReader{r: r}
	h, err := sr.next(snapshotHeaderSize)
	if err != nil {
		return nil, 0, err
	}
	if [4]byte(h[0:4]) != snapshotMagic {
		return nil, 0, corrupt("bad magic %x", h[0:4])
	}
	if v := binary.BigEndian.Uint16(h[4:6]); v != SnapshotVersion {
		return nil, 0, corrupt("unknown version %d", v)
	}
	if f := binary.BigEndian.Uint16(h[6:8]); f != 0 {
		return nil, 0, corrupt("unknown header flags %#x", f)
	}
	offset := int64(binary.BigEndian.Uint64(h[8:16]))
	if offset < 0 {
		return nil, 0, corrupt("negative snapshot offset %d", offset)
	}
	count := binary.BigEndian.Uint32(h[16:20])

	st := &State{}
	if count > 0 {
		st.producers = make(map[int64]*entry, min(count, preallocLimit))
	}
	// Entries are carved from slabs of at most slabSize, so that allocation
	// follows the records actually read.
	const slabSize = 256
	var slab []entry
	prevPID := int64(-1)
	for i := range count {
		ph, err := sr.next(producerHeaderSize)
		if err != nil {
			return nil, 0, err
		}
		pid := int64(binary.BigEndian.Uint64(ph[0:8]))
		if pid <= prevPID {
			return nil, 0, corrupt("producer id %d after %d", pid, prevPID)
		}
		prevPID = pid
		if len(slab) == 0 {
			slab = make([]entry, min(count-i, slabSize))
		}
		e := &slab[0]
		slab = slab[1:]
		*e = entry{epoch: int16(binary.BigEndian.Uint16(ph[8:10])), n: int(ph[10])}
		if e.n < 1 || e.n > MaxRetainedBatches {
			return nil, 0, corrupt("producer %d has %d batches", pid, e.n)
		}
		prevLast := int64(-1)
		for i := range e.n {
			br, err := sr.next(batchRecordSize)
			if err != nil {
				return nil, 0, err
			}
			b := batch{
				firstSeq:     int32(binary.BigEndian.Uint32(br[0:4])),
				lastSeq:      int32(binary.BigEndian.Uint32(br[4:8])),
				firstOffset:  int64(binary.BigEndian.Uint64(br[8:16])),
				lastOffset:   int64(binary.BigEndian.Uint64(br[16:24])),
				maxTimestamp: int64(binary.BigEndian.Uint64(br[24:32])),
			}
			flags := br[32]
			if flags&^batchFlagsKnown != 0 {
				return nil, 0, corrupt("producer %d batch %d: unknown flags %#x", pid, i, flags)
			}
			b.transactional = flags&batchFlagTransactional != 0
			if b.firstOffset <= prevLast || b.lastOffset < b.firstOffset || b.lastOffset >= offset {
				return nil, 0, corrupt("producer %d batch %d: offsets [%d, %d] after %d, snapshot offset %d",
					pid, i, b.firstOffset, b.lastOffset, prevLast, offset)
			}
			prevLast = b.lastOffset
			e.batches[i] = b
		}
		st.producers[pid] = e
	}
	want := sr.crc
	t, err := sr.next(snapshotTrailerSize)
	if err != nil {
		return nil, 0, err
	}
	if got := binary.BigEndian.Uint32(t); got != want {
		return nil, 0, corrupt("crc %#08x, computed %#08x", got, want)
	}
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); {
	case err == nil:
		return nil, 0, corrupt("trailing bytes after snapshot")
	case !errors.Is(err, io.EOF):
		return nil, 0, fmt.Errorf("read snapshot: %w", err)
	}
	return st, offset, nil
}
