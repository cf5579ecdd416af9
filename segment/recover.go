package segment

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// recoverBufBytes is the read buffer of a recovery scan; batches larger than
// it are checksummed in a streaming pass, so memory stays constant.
const recoverBufBytes = 1 << 20

// recoverSegment re-validates every batch of s from position 0 up to
// fileSize and rebuilds its in-memory indexes. It stops at the first batch
// that is torn (runs past the end), corrupt (CRC, framing, fields) or out of
// sequence (base offset != expected next offset), and returns the position
// where the valid prefix ends, the next offset after it, and the reason it
// stopped (nil when the whole file is valid). onBatch sees every valid
// header in order.
func recoverSegment(s *segment, fileSize int64, interval int64, onBatch func(Header)) (int64, int64, error) {
	buf := make([]byte, min(int64(recoverBufBytes), max(fileSize, HeaderSize)))
	var bufStart, bufEnd int64 // file range held in buf
	fill := func(pos, need int64) error {
		if pos >= bufStart && pos+need <= bufEnd {
			return nil
		}
		want := min(int64(len(buf)), fileSize-pos)
		n, err := s.f.ReadAt(buf[:want], pos)
		if int64(n) < need {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		bufStart, bufEnd = pos, pos+int64(n)
		return nil
	}
	var pos int64
	expect := s.base
	for pos < fileSize {
		if fileSize-pos < HeaderSize {
			return pos, expect, fmt.Errorf("%w: torn header at %d (%d bytes left)", ErrCorrupt, pos, fileSize-pos)
		}
		if err := fill(pos, HeaderSize); err != nil {
			return pos, expect, fmt.Errorf("read at %d: %w", pos, err)
		}
		h := parseHeader(buf[pos-bufStart:])
		size, err := checkFraming(h, int(min(fileSize-pos, 1<<31-1)), 0)
		if err != nil {
			return pos, expect, fmt.Errorf("batch at %d: %w", pos, err)
		}
		if int64(size) <= int64(len(buf)) {
			if err := fill(pos, int64(size)); err != nil {
				return pos, expect, fmt.Errorf("read at %d: %w", pos, err)
			}
			if err := checkBody(h, buf[pos-bufStart:pos-bufStart+int64(size)]); err != nil {
				return pos, expect, fmt.Errorf("batch at %d: %w", pos, err)
			}
		} else {
			if err := checkLarge(s.f, h, pos, buf); err != nil {
				return pos, expect, fmt.Errorf("batch at %d: %w", pos, err)
			}
			bufStart, bufEnd = 0, 0
		}
		if h.BaseOffset != expect {
			return pos, expect, fmt.Errorf("%w: batch at %d has base offset %d, expected %d", ErrCorrupt, pos, h.BaseOffset, expect)
		}
		s.noteBatch(h, pos, interval)
		onBatch(h)
		pos += int64(size)
		expect = h.NextOffset()
	}
	return pos, expect, nil
}

// checkLarge validates a batch bigger than buf by streaming its CRC.
func checkLarge(f File, h Header, pos int64, buf []byte) error {
	end := pos + int64(h.Size())
	var crc uint32
	for p := pos + offAttributes; p < end; {
		n := min(int64(len(buf)), end-p)
		got, err := f.ReadAt(buf[:n], p)
		if int64(got) < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		crc = crc32.Update(crc, castagnoli, buf[:n])
		p += n
	}
	if crc != h.CRC {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorrupt, crc, h.CRC)
	}
	return checkFields(h, h.Size())
}
