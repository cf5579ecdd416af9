package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendResponse appends a complete response frame for the request header h
// to dst: the 4-byte size, the correlation id, an empty tag section (0x00)
// when the response is flexible, then the body from resp.AppendTo.
//
// resp's version is set to h.Version first. ApiVersions responses always use
// response header v0 (no tag byte) so that a client can read them before it
// knows which versions the broker speaks (KIP-511).
func AppendResponse(dst []byte, h Header, resp kmsg.Response) []byte {
	resp.SetVersion(h.Version)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.CorrelationID))
	if resp.IsFlexible() && h.Key != KeyApiVersions {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// APIVersionsError returns the frame a broker sends for an ApiVersions
// request whose version it does not support: a v0 response carrying
// UNSUPPORTED_VERSION and the DefaultVersions API list. Clients read the
// ApiVersions entry and retry with a version in range.
func APIVersionsError(h Header) []byte {
	v := DefaultVersions()
	return v.APIVersionsError(h)
}

// APIVersionsError is like the package-level APIVersionsError but lists the
// APIs of v.
func (v *Versions) APIVersionsError(h Header) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = CodeUnsupportedVersion
	resp.ApiKeys = v.List()
	h.Key, h.Version = KeyApiVersions, 0
	return AppendResponse(nil, h, resp)
}

// APIVersionsResponse builds the body of a successful ApiVersions response
// listing v's APIs; the caller fills throttle, features etc. as it likes and
// encodes it with AppendResponse.
func (v *Versions) APIVersionsResponse() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = v.List()
	return resp
}

// ReadResponse decodes a response frame (size prefix stripped) to a request
// of req's key and version into resp: it checks the correlation id, skips
// the header's tag section when the response is flexible (never for
// ApiVersions), then decodes the body. Byte fields of resp (records) alias
// frame. A short or undecodable frame returns an error wrapping
// ErrMalformed.
func ReadResponse(frame []byte, corr int32, req kmsg.Request, resp kmsg.Response) error {
	resp.SetVersion(req.GetVersion())
	r := reader{src: frame}
	if got := r.Int32(); r.bad || got != corr {
		return fmt.Errorf("%w: response correlation id %d, want %d", ErrMalformed, got, corr)
	}
	if resp.IsFlexible() && req.Key() != KeyApiVersions {
		kmsg.SkipTags(&r)
		if r.bad {
			return fmt.Errorf("%w: %s response header tags", ErrMalformed, kmsg.NameForKey(req.Key()))
		}
	}
	if err := readResponseBody(resp, r.src); err != nil {
		return fmt.Errorf("%w: %s v%d response: %w", ErrMalformed, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return nil
}

func readResponseBody(resp kmsg.Response, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errDecodePanic, p)
		}
	}()
	return resp.ReadFrom(body)
}
