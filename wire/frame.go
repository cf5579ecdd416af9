package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameBytes is the largest request frame ReadFrame accepts when the
// caller passes maxBytes <= 0. It matches Kafka's socket.request.max.bytes.
const DefaultMaxFrameBytes = 100 << 20

// growChunk bounds how far ReadFrame allocates ahead of the bytes that have
// actually arrived. A peer that announces a 100 MiB frame and then sends
// nothing costs us at most this much memory, not the announced size.
const growChunk = 1 << 20

// Framing errors. After any of them the connection's byte stream is out of
// step, so the caller must close it.
var (
	ErrFrameTooLarge  = errors.New("wire: frame larger than the configured maximum")
	ErrNegativeFrame  = errors.New("wire: negative frame size")
	ErrTruncatedFrame = errors.New("wire: truncated frame")
)

// ReadFrame reads one size-prefixed frame from r and returns its body (the
// bytes after the 4-byte size).
//
// The size is checked against maxBytes (DefaultMaxFrameBytes when <= 0)
// before anything is allocated. The body is read into buf when cap(buf) is
// large enough, so a connection loop can recycle one buffer; the returned
// slice then aliases buf. Larger frames get a fresh slice that grows as data
// arrives rather than being sized up front from the untrusted prefix.
//
// A clean end of stream before the first size byte returns io.EOF unwrapped.
// A stream that ends inside the size or the body returns an error wrapping
// ErrTruncatedFrame (and io.ErrUnexpectedEOF). Other read errors are wrapped.
func ReadFrame(r io.Reader, maxBytes int32, buf []byte) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFrameBytes
	}
	var sizeBuf []byte
	if cap(buf) >= 4 {
		sizeBuf = buf[:4]
	} else {
		sizeBuf = make([]byte, 4)
	}
	if n, err := io.ReadFull(r, sizeBuf); err != nil {
		switch {
		case n == 0 && errors.Is(err, io.EOF):
			return nil, io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%w: size prefix: %w", ErrTruncatedFrame, err)
		}
		return nil, fmt.Errorf("wire: read frame size: %w", err)
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf))
	switch {
	case size < 0:
		return nil, fmt.Errorf("%w: %d", ErrNegativeFrame, size)
	case size > maxBytes:
		return nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, maxBytes)
	}
	n := int(size)
	if cap(buf) >= n {
		body := buf[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, bodyErr(err, n)
		}
		return body, nil
	}
	return readGrowing(r, n)
}

// readGrowing reads n bytes into a slice that is enlarged only as earlier
// chunks fill, doubling up to growChunk steps.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	body := make([]byte, 0, min(n, growChunk))
	for len(body) < n {
		if len(body) == cap(body) {
			next := min(n, len(body)+max(len(body), growChunk))
			grown := make([]byte, len(body), next)
			copy(grown, body)
			body = grown
		}
		want := min(n, cap(body))
		got, err := io.ReadFull(r, body[len(body):want])
		body = body[:len(body)+got]
		if err != nil {
			return nil, bodyErr(err, n)
		}
	}
	return body, nil
}

func bodyErr(err error, n int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: body of %d bytes: %w", ErrTruncatedFrame, n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("wire: read frame body of %d bytes: %w", n, err)
}
