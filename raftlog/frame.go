package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Raft message framing on an internal link connection ('R' purpose):
//
//	length u32 (big endian) | protobuf-marshalled raftpb.Message (length bytes)
//
// repeated until the connection closes. A length of 0 or above the
// receiver's MaxFrameSize closes the connection.

// ErrFrameTooLarge reports a frame length above the configured maximum (or
// zero), detected before any allocation for it.
var ErrFrameTooLarge = errors.New("raftlog: raft frame size out of bounds")

// ErrBadFrame reports a frame that does not hold a raft message.
var ErrBadFrame = errors.New("raftlog: malformed raft frame")

const frameHeader = 4

// frameChunk bounds the buffer allocated for a frame ahead of its bytes
// arriving: larger frames grow as they are read, so a peer that announces
// a huge frame and stalls costs at most this much.
const frameChunk = 1 << 20

// AppendMessageFrame appends m's frame to dst.
func AppendMessageFrame(dst []byte, m *raftpb.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], fmt.Errorf("raftlog: marshal %v: %w", m.GetType(), err)
	}
	n := len(dst) - start - frameHeader
	if uint64(n) > uint64(^uint32(0)) {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// ReadMessageFrame reads one frame from r and decodes its message. A frame
// longer than maxSize fails with ErrFrameTooLarge before its body is read;
// a clean end of stream before a frame returns io.EOF.
func ReadMessageFrame(r io.Reader, maxSize int) (*raftpb.Message, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(maxSize) {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, n, maxSize)
	}
	var body []byte
	if n <= frameChunk {
		body = make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("raftlog: read frame: %w", unexpected(err))
		}
	} else {
		var buf bytes.Buffer
		buf.Grow(frameChunk)
		got, err := io.CopyN(&buf, r, int64(n))
		if got != int64(n) {
			return nil, fmt.Errorf("raftlog: read frame: %w", unexpected(err))
		}
		body = buf.Bytes()
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, nil
}

func unexpected(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
