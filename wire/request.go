package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request errors. ErrUnknownAPI and ErrMalformed mean the broker cannot build
// a well-formed reply and closes the connection, as Kafka does.
// *UnsupportedVersionError carries the parsed header so ApiVersions can still
// be answered (see APIVersionsError).
var (
	ErrUnknownAPI         = errors.New("wire: unknown or disabled api key")
	ErrMalformed          = errors.New("wire: malformed request")
	ErrUnsupportedVersion = errors.New("wire: unsupported api version")
)

// UnsupportedVersionError reports a request whose version lies outside the
// advertised range. errors.Is(err, ErrUnsupportedVersion) holds.
type UnsupportedVersionError struct {
	Header   Header // fully parsed request header
	Min, Max int16  // advertised range for Header.Key
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("wire: %s v%d unsupported (supported %d–%d)",
		kmsg.NameForKey(e.Header.Key), e.Header.Version, e.Min, e.Max)
}

// Is makes errors.Is(err, ErrUnsupportedVersion) true.
func (e *UnsupportedVersionError) Is(target error) bool { return target == ErrUnsupportedVersion }

// Header is a parsed request header (v1, or v2 when Flexible).
type Header struct {
	Key, Version  int16
	CorrelationID int32
	ClientID      *string // nil when the client sent a null client id
	Flexible      bool    // the request (and, except ApiVersions, its response) uses KIP-482 encoding
}

// Request is a decoded request. Msg is a kmsg request pointer
// (*kmsg.ProduceRequest, ...) with its version set. Byte fields in Msg, such
// as Produce record batches, alias the frame passed to ParseRequest: the
// frame must not be reused or modified while Msg is in use.
type Request struct {
	Header
	Msg kmsg.Request
}

// ParseRequest decodes frame (a body returned by ReadFrame) against
// DefaultVersions. See (*Versions).ParseRequest.
func ParseRequest(frame []byte) (Request, error) {
	return parseRequest(frame, coreRange)
}

// ParseRequest decodes frame: the request header, then the body with kmsg.
//
//   - a frame too short for key, version and correlation id, or with a bad
//     client id or header tags: error wrapping ErrMalformed, zero Request;
//   - a key kmsg does not know or the table does not enable: error wrapping
//     ErrUnknownAPI (Request.Header filled);
//   - a version outside the table's range: *UnsupportedVersionError, body not
//     decoded (Request.Header filled);
//   - a body kmsg rejects: error wrapping ErrMalformed (Request.Header filled).
//
// Bytes after a complete body are ignored, as kmsg's own decoders do.
func (v *Versions) ParseRequest(frame []byte) (Request, error) {
	return parseRequest(frame, v.Supported)
}

func parseRequest(frame []byte, supported func(int16) (int16, int16, bool)) (Request, error) {
	var h Header
	r := reader{src: frame}
	h.Key = r.Int16()
	h.Version = r.Int16()
	h.CorrelationID = r.Int32()
	if n := r.Int16(); n >= 0 {
		s := string(r.Span(int(n)))
		h.ClientID = &s
	} else if n < -1 {
		r.fail()
	}
	if !r.Ok() {
		return Request{}, fmt.Errorf("%w: short request header (%d bytes)", ErrMalformed, len(frame))
	}

	req := kmsg.RequestForKey(h.Key)
	lo, hi, ok := supported(h.Key)
	if req == nil || !ok {
		return Request{Header: h}, fmt.Errorf("%w: key %d", ErrUnknownAPI, h.Key)
	}
	req.SetVersion(h.Version)
	h.Flexible = req.IsFlexible()
	if h.Version < lo || h.Version > hi {
		return Request{Header: h}, &UnsupportedVersionError{Header: h, Min: lo, Max: hi}
	}
	if h.Flexible {
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return Request{Header: h}, fmt.Errorf("%w: %s v%d: header tags", ErrMalformed, kmsg.NameForKey(h.Key), h.Version)
		}
	}
	if err := readBody(req, r.src); err != nil {
		return Request{Header: h}, fmt.Errorf("%w: %s v%d: %w", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	return Request{Header: h, Msg: req}, nil
}

// errDecodePanic stands in for a panic inside kmsg's generated decoder.
var errDecodePanic = errors.New("decoder panic")

// readBody runs kmsg's decoder behind a recover. The generated decoders bound
// every allocation by the remaining input and fuzzing has not made them
// panic, but they are third-party code fed hostile bytes on a long-lived
// server goroutine; one overlooked index would otherwise take the whole
// broker down. A panic is reported as a malformed request, which closes only
// the offending connection.
func readBody(req kmsg.Request, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errDecodePanic, p)
		}
	}()
	return req.ReadFrom(body)
}

// reader is a bounds-checked cursor over a request. After the first short
// read it stays failed and returns zero values. It satisfies kmsg.TagReader
// (including the optional Ok method that stops SkipTags early).
type reader struct {
	src []byte
	bad bool
}

func (r *reader) Ok() bool { return !r.bad }

func (r *reader) fail() { r.bad, r.src = true, nil }

func (r *reader) Span(n int) []byte {
	if r.bad || n < 0 || n > len(r.src) {
		r.fail()
		return nil
	}
	b := r.src[:n:n]
	r.src = r.src[n:]
	return b
}

func (r *reader) Int16() int16 {
	b := r.Span(2)
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

func (r *reader) Int32() int32 {
	b := r.Span(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Uvarint reads an unsigned varint of at most 5 bytes that fits in 32 bits.
func (r *reader) Uvarint() uint32 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.src)
	if n <= 0 || n > 5 || v > 1<<32-1 {
		r.fail()
		return 0
	}
	r.src = r.src[n:]
	return uint32(v)
}
