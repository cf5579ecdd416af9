package link

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Purpose names the protocol that follows a handshake on a connection. It is
// bound into the authenticated transcript, so a peer cannot change it.
type Purpose byte

// Purposes known to Sluice.
const (
	// PurposeRaft carries etcd raft messages between controllers.
	PurposeRaft Purpose = 'R'
	// PurposeFetch carries replica fetches (served with sendfile).
	PurposeFetch Purpose = 'F'
	// PurposeControl carries controller RPCs (package raftlog/controller).
	PurposeControl Purpose = 'C'
)

// String returns a short name for logs.
func (p Purpose) String() string {
	switch p {
	case PurposeRaft:
		return "raft"
	case PurposeFetch:
		return "fetch"
	case PurposeControl:
		return "control"
	}
	return fmt.Sprintf("purpose(%#02x)", byte(p))
}

// Wire constants; see doc.go for the layouts.
const (
	// Version is the handshake version this package speaks.
	Version = 1

	magic        = "SLNK"
	nonceSize    = 32
	macSize      = sha256.Size
	helloSize    = 4 + 1 + 1 + 2 + 4 + nonceSize // 44
	challengeHdr = 4 + 1 + 1 + 2 + 4 + nonceSize // 44, the part the server MAC covers
	challengeSz  = challengeHdr + macSize        // 76
	proofSize    = macSize                       // 32
	verdictSize  = 1

	labelServer = "sluice link v1 server\x00"
	labelClient = "sluice link v1 client\x00"
)

// Status codes carried in a challenge (and the final verdict byte).
const (
	statusOK         byte = 0
	statusBadVersion byte = 1
	statusBadPurpose byte = 2
	maxKnownStatus        = statusBadPurpose
	verdictAccepted  byte = 0
	reservedZero          = 0
)

var (
	// ErrAuth reports a failed proof: the peer does not hold our secret.
	ErrAuth = errors.New("link: authentication failed (cluster secret mismatch)")
	// ErrProtocol reports bytes that are not a Sluice link handshake.
	ErrProtocol = errors.New("link: not a sluice link handshake")
	// ErrVersion reports a handshake version this side does not speak.
	ErrVersion = errors.New("link: unsupported handshake version")
	// ErrPurpose reports a purpose the server does not accept.
	ErrPurpose = errors.New("link: unsupported purpose")
	// ErrRefused reports, on the dialing side, that the server turned the
	// connection down (it closed it or answered with a refusal status).
	ErrRefused = errors.New("link: refused by peer")
)

// hello is the client's first message.
type hello struct {
	version uint8
	purpose Purpose
	nodeID  int32
	nonce   [nonceSize]byte
}

// challenge is the server's answer.
type challenge struct {
	version uint8
	status  byte
	nodeID  int32
	nonce   [nonceSize]byte
	mac     [macSize]byte
}

func (h *hello) encode() [helloSize]byte {
	var b [helloSize]byte
	copy(b[0:4], magic)
	b[4] = h.version
	b[5] = byte(h.purpose)
	// b[6:8] reserved, zero
	binary.BigEndian.PutUint32(b[8:12], uint32(h.nodeID))
	copy(b[12:], h.nonce[:])
	return b
}

// decodeHello parses a client hello. It never reads past helloSize bytes and
// rejects anything but an exact-length, well-formed message.
func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloSize {
		return h, fmt.Errorf("%w: hello is %d bytes, want %d", ErrProtocol, len(b), helloSize)
	}
	if string(b[0:4]) != magic {
		return h, fmt.Errorf("%w: bad magic %x", ErrProtocol, b[0:4])
	}
	h.version = b[4]
	if h.version != Version {
		return h, fmt.Errorf("%w: %d", ErrVersion, h.version)
	}
	if binary.BigEndian.Uint16(b[6:8]) != reservedZero {
		return h, fmt.Errorf("%w: reserved bits set in hello", ErrProtocol)
	}
	h.purpose = Purpose(b[5])
	h.nodeID = int32(binary.BigEndian.Uint32(b[8:12]))
	copy(h.nonce[:], b[12:])
	return h, nil
}

func (c *challenge) encode() [challengeSz]byte {
	var b [challengeSz]byte
	copy(b[0:4], magic)
	b[4] = c.version
	b[5] = c.status
	binary.BigEndian.PutUint32(b[8:12], uint32(c.nodeID))
	copy(b[12:12+nonceSize], c.nonce[:])
	copy(b[challengeHdr:], c.mac[:])
	return b
}

// decodeChallenge parses a server challenge, exact length only.
func decodeChallenge(b []byte) (challenge, error) {
	var c challenge
	if len(b) != challengeSz {
		return c, fmt.Errorf("%w: challenge is %d bytes, want %d", ErrProtocol, len(b), challengeSz)
	}
	if string(b[0:4]) != magic {
		return c, fmt.Errorf("%w: bad magic %x", ErrProtocol, b[0:4])
	}
	c.version = b[4]
	c.status = b[5]
	if c.version != Version {
		return c, fmt.Errorf("%w: %d", ErrVersion, c.version)
	}
	if c.status > maxKnownStatus {
		return c, fmt.Errorf("%w: unknown status %d", ErrProtocol, c.status)
	}
	if binary.BigEndian.Uint16(b[6:8]) != reservedZero {
		return c, fmt.Errorf("%w: reserved bits set in challenge", ErrProtocol)
	}
	c.nodeID = int32(binary.BigEndian.Uint32(b[8:12]))
	copy(c.nonce[:], b[12:12+nonceSize])
	copy(c.mac[:], b[challengeHdr:])
	return c, nil
}

// transcriptMAC is HMAC-SHA256(secret, label || parts...). Distinct labels
// keep a server proof from ever being usable as a client proof.
func transcriptMAC(secret []byte, label string, parts ...[]byte) [macSize]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	var out [macSize]byte
	m.Sum(out[:0])
	return out
}

// clientHandshake runs the dialing side on rw. It returns the server's node
// id once both sides have proven the secret and the server has accepted.
func clientHandshake(rw io.ReadWriter, secret []byte, selfID int32, purpose Purpose) (int32, error) {
	h := hello{version: Version, purpose: purpose, nodeID: selfID}
	if _, err := rand.Read(h.nonce[:]); err != nil {
		return 0, fmt.Errorf("link: nonce: %w", err)
	}
	hb := h.encode()
	if _, err := rw.Write(hb[:]); err != nil {
		return 0, fmt.Errorf("link: send hello: %w", err)
	}
	var cb [challengeSz]byte
	if _, err := io.ReadFull(rw, cb[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: server closed before its challenge", ErrRefused)
		}
		return 0, readErr("challenge", err)
	}
	c, err := decodeChallenge(cb[:])
	if err != nil {
		return 0, err
	}
	switch c.status {
	case statusOK:
	case statusBadVersion:
		return 0, fmt.Errorf("%w: server does not speak version %d: %w", ErrRefused, Version, ErrVersion)
	case statusBadPurpose:
		return 0, fmt.Errorf("%w: server does not accept %v: %w", ErrRefused, purpose, ErrPurpose)
	default:
		return 0, fmt.Errorf("%w: server rejected hello (status %d): %w", ErrRefused, c.status, ErrProtocol)
	}
	want := transcriptMAC(secret, labelServer, hb[:], cb[:challengeHdr])
	if !hmac.Equal(want[:], c.mac[:]) {
		// Tell the server why we hang up with an all-zero proof (which no
		// secret produces in practice) rather than a MAC computed over a
		// transcript we could not verify.
		var abort [proofSize]byte
		_, _ = rw.Write(abort[:])
		return 0, fmt.Errorf("%w: server %d failed to prove the secret", ErrAuth, c.nodeID)
	}
	proof := transcriptMAC(secret, labelClient, hb[:], cb[:])
	if _, err := rw.Write(proof[:]); err != nil {
		return 0, fmt.Errorf("link: send proof: %w", err)
	}
	var v [verdictSize]byte
	if _, err := io.ReadFull(rw, v[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: server %d closed after our proof", ErrRefused, c.nodeID)
		}
		return 0, readErr("verdict", err)
	}
	if v[0] != verdictAccepted {
		return 0, fmt.Errorf("%w: server %d verdict %d", ErrRefused, c.nodeID, v[0])
	}
	return c.nodeID, nil
}

// serverHandshake runs the accepting side on rw. allow decides which
// purposes are served. On success it returns the client's node id and
// purpose; on failure the caller closes the connection, and the returned id
// is the one the client claimed, or -1 if its hello was unreadable.
func serverHandshake(rw io.ReadWriter, secret []byte, selfID int32, allow func(Purpose) bool) (int32, Purpose, error) {
	var hb [helloSize]byte
	if _, err := io.ReadFull(rw, hb[:]); err != nil {
		return -1, 0, readErr("hello", err)
	}
	h, err := decodeHello(hb[:])
	if err != nil {
		// Answer a refusal only if the peer speaks our framing; otherwise
		// say nothing to a stranger.
		if errors.Is(err, ErrVersion) {
			refuse := challenge{version: Version, status: statusBadVersion, nodeID: selfID}
			rb := refuse.encode()
			_, _ = rw.Write(rb[:])
		}
		return -1, 0, err
	}
	if !allow(h.purpose) {
		refuse := challenge{version: Version, status: statusBadPurpose, nodeID: selfID}
		rb := refuse.encode()
		_, _ = rw.Write(rb[:])
		return h.nodeID, h.purpose, fmt.Errorf("%w: %v from node %d", ErrPurpose, h.purpose, h.nodeID)
	}
	c := challenge{version: Version, status: statusOK, nodeID: selfID}
	if _, err := rand.Read(c.nonce[:]); err != nil {
		return h.nodeID, h.purpose, fmt.Errorf("link: nonce: %w", err)
	}
	cb := c.encode()
	c.mac = transcriptMAC(secret, labelServer, hb[:], cb[:challengeHdr])
	cb = c.encode()
	if _, err := rw.Write(cb[:]); err != nil {
		return h.nodeID, h.purpose, fmt.Errorf("link: send challenge: %w", err)
	}
	var proof [proofSize]byte
	if _, err := io.ReadFull(rw, proof[:]); err != nil {
		return h.nodeID, h.purpose, readErr("proof", err)
	}
	if proof == ([proofSize]byte{}) {
		return h.nodeID, h.purpose, fmt.Errorf("%w: client claiming node %d could not verify our proof", ErrAuth, h.nodeID)
	}
	want := transcriptMAC(secret, labelClient, hb[:], cb[:])
	if !hmac.Equal(want[:], proof[:]) {
		return h.nodeID, h.purpose, fmt.Errorf("%w: client claiming node %d", ErrAuth, h.nodeID)
	}
	if _, err := rw.Write([]byte{verdictAccepted}); err != nil {
		return h.nodeID, h.purpose, fmt.Errorf("link: send verdict: %w", err)
	}
	return h.nodeID, h.purpose, nil
}

// readErr turns a short read into ErrProtocol (the peer hung up mid-message)
// and keeps deadline and other I/O errors as they are.
func readErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("link: read %s: peer closed: %w (%w)", what, ErrProtocol, err)
	}
	return fmt.Errorf("link: read %s: %w", what, err)
}
