package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxPendingHandshakes bounds handshakes in progress per listener.
const DefaultMaxPendingHandshakes = 64

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// Secret is the cluster secret (see LoadSecret). Required.
	Secret []byte
	// SelfID is this broker's node id, proven to connecting peers.
	SelfID int32
	// Purposes lists the purposes served; nil means PurposeRaft,
	// PurposeFetch and PurposeControl. Others are refused with ErrPurpose.
	Purposes []Purpose
	// HandshakeTimeout bounds each inbound handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes bounds connections that are handshaking or
	// authenticated but not yet returned by Accept; beyond it new connections
	// are closed at once (ReasonOverload). Zero means
	// DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
	// Logger receives one Warn line per refused connection; nil discards.
	Logger *slog.Logger
	// OnRefused, if set, is called once per refused connection (after it is
	// closed) from the goroutine that handled it; it must not block. Use it
	// to feed a metric; Stats offers the same counts.
	OnRefused func(Refusal)
}

// DefaultListenerConfig returns a config with every default filled in; the
// caller still has to set Secret and SelfID.
func DefaultListenerConfig() ListenerConfig {
	return ListenerConfig{
		Purposes:             []Purpose{PurposeRaft, PurposeFetch, PurposeControl}, // every internal protocol
		HandshakeTimeout:     DefaultHandshakeTimeout,                              // generous for a LAN, short for a slowloris
		MaxPendingHandshakes: DefaultMaxPendingHandshakes,                          // far above a cluster's peer count
	}
}

// Validate reports a config that cannot work.
func (c ListenerConfig) Validate() error {
	if err := CheckSecret(c.Secret); err != nil {
		return fmt.Errorf("link: listener: %w", err)
	}
	if c.HandshakeTimeout < 0 {
		return fmt.Errorf("link: listener: negative HandshakeTimeout %v", c.HandshakeTimeout)
	}
	if c.MaxPendingHandshakes < 0 {
		return fmt.Errorf("link: listener: negative MaxPendingHandshakes %d", c.MaxPendingHandshakes)
	}
	for _, p := range c.Purposes {
		if p == 0 {
			return errors.New("link: listener: purpose 0 is not valid")
		}
	}
	return nil
}

// Reason classifies a refused connection.
type Reason uint8

// Refusal reasons.
const (
	ReasonAuth     Reason = iota // wrong secret (ErrAuth)
	ReasonProtocol               // not our handshake, bad version, or hung up mid-way
	ReasonPurpose                // purpose not served (ErrPurpose)
	ReasonTimeout                // handshake deadline passed
	ReasonOverload               // MaxPendingHandshakes reached
	ReasonIO                     // other socket error
	numReasons
)

// String returns the reason's log and metric label.
func (r Reason) String() string {
	switch r {
	case ReasonAuth:
		return "auth"
	case ReasonProtocol:
		return "protocol"
	case ReasonPurpose:
		return "purpose"
	case ReasonTimeout:
		return "timeout"
	case ReasonOverload:
		return "overload"
	case ReasonIO:
		return "io"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Refusal describes one refused inbound connection.
type Refusal struct {
	Remote net.Addr
	// PeerID is the node id the peer claimed (unauthenticated), or -1 if its
	// hello was never read.
	PeerID  int32
	Purpose Purpose
	Reason  Reason
	Err     error
}

// Accepted is an authenticated inbound connection.
type Accepted struct {
	// Conn is the accepted socket itself (a *net.TCPConn for TCP
	// listeners), with no deadline set.
	Conn net.Conn
	// PeerID is the peer's node id, bound into the verified transcript.
	PeerID int32
	// Purpose is the protocol the peer will speak next.
	Purpose Purpose
}

// Stats is a snapshot of a Listener's counters.
type Stats struct {
	Accepted uint64
	// Refused counts refused connections by Reason.
	Refused [numReasons]uint64
	// Pending is the number of connections handshaking or awaiting Accept.
	Pending int
}

// RefusedTotal sums Refused over all reasons.
func (s Stats) RefusedTotal() uint64 {
	var n uint64
	for _, v := range s.Refused {
		n += v
	}
	return n
}

// Listener authenticates inbound internal connections. It owns one accept
// goroutine and one goroutine per handshake in progress; Close stops them
// all. Accept and Close are safe for concurrent use.
type Listener struct {
	inner   net.Listener
	cfg     ListenerConfig
	log     *slog.Logger
	allowed [256]bool

	slots chan struct{} // one token per pending connection
	ready chan Accepted
	done  chan struct{}

	mu      sync.Mutex
	pending map[net.Conn]struct{}

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	accepted atomic.Uint64
	refused  [numReasons]atomic.Uint64
}

// Listen opens a TCP listener on addr and wraps it with NewListener.
func Listen(ctx context.Context, addr string, cfg ListenerConfig) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	inner, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("link: listen %s: %w", addr, err)
	}
	l, err := NewListener(inner, cfg)
	if err != nil {
		_ = inner.Close()
		return nil, err
	}
	return l, nil
}

// NewListener wraps inner and starts accepting. The Listener owns inner from
// now on and closes it in Close.
func NewListener(inner net.Listener, cfg ListenerConfig) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	def := DefaultListenerConfig()
	if cfg.Purposes == nil {
		cfg.Purposes = def.Purposes
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = def.HandshakeTimeout
	}
	if cfg.MaxPendingHandshakes == 0 {
		cfg.MaxPendingHandshakes = def.MaxPendingHandshakes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		inner:   inner,
		cfg:     cfg,
		log:     log.With("listener", "internal", "addr", inner.Addr().String()),
		slots:   make(chan struct{}, cfg.MaxPendingHandshakes),
		ready:   make(chan Accepted),
		done:    make(chan struct{}),
		pending: make(map[net.Conn]struct{}),
	}
	for _, p := range cfg.Purposes {
		l.allowed[p] = true
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Accept waits for the next authenticated connection. After Close it returns
// an error wrapping net.ErrClosed.
func (l *Listener) Accept() (Accepted, error) {
	select {
	case a := <-l.ready:
		l.accepted.Add(1)
		return a, nil
	case <-l.done:
		return Accepted{}, fmt.Errorf("link: accept: %w", net.ErrClosed)
	}
}

// Close stops accepting, closes every connection not yet returned by Accept
// and waits for the listener's goroutines to exit. It is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeErr = l.inner.Close()
		l.mu.Lock()
		for c := range l.pending {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l.closeErr
}

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	s := Stats{Accepted: l.accepted.Load(), Pending: len(l.slots)}
	for i := range s.Refused {
		s.Refused[i] = l.refused[i].Load()
	}
	return s
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.log.Error("link: listener closed underneath", "err", err)
				return
			}
			// Transient (e.g. EMFILE): back off so we do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("link: accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		select {
		case l.slots <- struct{}{}:
		default:
			_ = c.Close()
			l.refuse(Refusal{Remote: c.RemoteAddr(), PeerID: -1, Reason: ReasonOverload,
				Err: fmt.Errorf("%d handshakes pending", cap(l.slots))})
			continue
		}
		if !l.track(c) {
			_ = c.Close()
			<-l.slots
			return
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

// track registers c so Close can interrupt it; false once closing.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

func (l *Listener) serve(c net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	defer l.untrack(c)

	err := c.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	var (
		peer    int32 = -1
		purpose Purpose
	)
	if err == nil {
		peer, purpose, err = serverHandshake(c, l.cfg.Secret, l.cfg.SelfID, func(p Purpose) bool { return l.allowed[p] })
	}
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		_ = c.Close()
		select {
		case <-l.done:
			return // closing: interrupted handshakes are not refusals
		default:
		}
		l.refuse(Refusal{Remote: c.RemoteAddr(), PeerID: peer, Purpose: purpose, Reason: classify(err), Err: err})
		return
	}
	a := Accepted{Conn: c, PeerID: peer, Purpose: purpose}
	select {
	case l.ready <- a:
		l.log.Debug("link: accepted internal connection", "remote_addr", c.RemoteAddr().String(),
			"peer_node_id", peer, "purpose", purpose.String())
	case <-l.done:
		_ = c.Close()
	}
}

func (l *Listener) refuse(r Refusal) {
	if int(r.Reason) < len(l.refused) {
		l.refused[r.Reason].Add(1)
	}
	attrs := []any{"remote_addr", addrString(r.Remote), "reason", r.Reason.String(), "err", r.Err}
	if r.PeerID >= 0 || r.Purpose != 0 {
		attrs = append(attrs, "claimed_node_id", r.PeerID, "purpose", r.Purpose.String())
	}
	l.log.Warn("link: refused internal connection", attrs...)
	if l.cfg.OnRefused != nil {
		l.cfg.OnRefused(r)
	}
}

func classify(err error) Reason {
	switch {
	case errors.Is(err, ErrAuth):
		return ReasonAuth
	case errors.Is(err, ErrPurpose):
		return ReasonPurpose
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrVersion):
		return ReasonProtocol
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	}
	return ReasonIO
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
