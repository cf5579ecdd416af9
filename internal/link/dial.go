package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// DefaultHandshakeTimeout bounds a whole handshake on either side.
const DefaultHandshakeTimeout = 5 * time.Second

// Dialer opens authenticated internal connections. Its zero value is not
// usable (Secret is required); it is safe for concurrent use.
type Dialer struct {
	// Secret is the cluster secret (see LoadSecret). Required.
	Secret []byte
	// SelfID is this broker's node id, sent to and authenticated by the peer.
	SelfID int32
	// HandshakeTimeout bounds the handshake after the TCP connect; zero means
	// DefaultHandshakeTimeout. A context deadline that is sooner wins.
	HandshakeTimeout time.Duration
	// Net dials the TCP connection; zero value is a plain net.Dialer.
	Net net.Dialer
}

// Dial connects to addr, runs the handshake for purpose and returns the
// connection as-is (a *net.TCPConn, with no deadline set) and the peer's
// authenticated node id.
func (d *Dialer) Dial(ctx context.Context, addr string, purpose Purpose) (net.Conn, int32, error) {
	if len(d.Secret) == 0 {
		return nil, 0, fmt.Errorf("link: dial %s: %w", addr, ErrWeakSecret)
	}
	conn, err := d.Net.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("link: dial %s: %w", addr, err)
	}
	timeout := d.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("link: dial %s: set deadline: %w", addr, err)
	}
	// A cancelled context interrupts the handshake by expiring the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	peer, herr := clientHandshake(conn, d.Secret, d.SelfID, purpose)
	if !stop() || ctx.Err() != nil {
		if herr == nil {
			herr = ctx.Err()
		} else if errors.Is(herr, os.ErrDeadlineExceeded) {
			herr = fmt.Errorf("%w (%w)", ctx.Err(), herr)
		}
	}
	if herr == nil {
		herr = conn.SetDeadline(time.Time{})
	}
	if herr != nil {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("link: dial %s for %v: %w", addr, purpose, herr)
	}
	return conn, peer, nil
}

// Dial is (&Dialer{Secret: secret, SelfID: selfID}).Dial(ctx, addr, purpose).
func Dial(ctx context.Context, addr string, secret []byte, selfID int32, purpose Purpose) (net.Conn, int32, error) {
	d := Dialer{Secret: secret, SelfID: selfID}
	return d.Dial(ctx, addr, purpose)
}
