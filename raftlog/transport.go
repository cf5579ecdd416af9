package raftlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-io/sluice/internal/link"
)

// ErrWrongPeer reports a connection whose authenticated node id is not the
// one expected: a dialled address answered as another node, or an inbound
// peer sent a message claiming to come from someone else.
var ErrWrongPeer = errors.New("raftlog: raft peer identity mismatch")

// TransportConfig holds the settings of a Transport.
type TransportConfig struct {
	// Secret is the cluster secret that authenticates internal links.
	Secret []byte
	// MaxFrameSize bounds one received message (snapshots included).
	MaxFrameSize int
	// QueueSize bounds the messages queued for one peer; beyond it messages
	// are dropped (raft retransmits) and the peer reported unreachable.
	QueueSize int
	// DialTimeout bounds a connect plus handshake.
	DialTimeout time.Duration
	// WriteTimeout bounds one flush of queued messages, plus one second per
	// MiB written (snapshots).
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed dials to one
	// peer; it doubles from min to max and resets on success.
	BackoffMin, BackoffMax time.Duration
}

// DefaultTransportConfig returns the default transport settings; Secret
// remains to be set.
func DefaultTransportConfig() TransportConfig {
	return TransportConfig{
		MaxFrameSize: 256 << 20, // metadata snapshots are far smaller; bounds a hostile length
		QueueSize:    1024,      // a few seconds of heartbeats and appends
		DialTimeout:  2 * time.Second,
		WriteTimeout: 5 * time.Second,
		BackoffMin:   50 * time.Millisecond,
		BackoffMax:   time.Second, // a restarted peer is found within a second
	}
}

// Validate rejects settings that cannot work.
func (c TransportConfig) Validate() error {
	if err := link.CheckSecret(c.Secret); err != nil {
		return fmt.Errorf("raftlog: transport: %w", err)
	}
	if c.MaxFrameSize <= frameHeader || c.QueueSize <= 0 {
		return fmt.Errorf("raftlog: transport: MaxFrameSize %d and QueueSize %d must be positive", c.MaxFrameSize, c.QueueSize)
	}
	if c.DialTimeout <= 0 || c.WriteTimeout <= 0 || c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		return errors.New("raftlog: transport: timeouts must be positive and BackoffMin <= BackoffMax")
	}
	return nil
}

// TransportHandler is what a Transport delivers to: the raft loop.
type TransportHandler interface {
	// Receive hands over one message from an authenticated peer. It may
	// block (back-pressure on that peer's connection) until ctx is done.
	Receive(ctx context.Context, m *raftpb.Message) error
	// ReportUnreachable and ReportSnapshot forward to raft's methods of the
	// same names. They must not block.
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// TransportStats counts a Transport's messages.
type TransportStats struct {
	Sent, Received uint64
	// Dropped counts messages not sent: queue full, peer unknown or
	// unreachable, or a failed write.
	Dropped uint64
	// Rejected counts inbound connections closed for a bad frame or a
	// message whose sender or recipient does not match the link.
	Rejected uint64
}

// Transport carries raft messages between nodes over internal link
// connections (purpose 'R'). Outbound, each peer has one goroutine and a
// bounded queue feeding one connection it dials (and redials, with
// backoff); inbound, Serve reads the connections the node's listener
// accepted. Messages travel one way on a connection: a node sends on the
// connections it dialled and receives on those it accepted.
type Transport struct {
	self    uint64
	cfg     TransportConfig
	peers   func(uint64) (string, bool)
	h       TransportHandler
	log     *slog.Logger
	dialer  link.Dialer
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	out     map[uint64]*peerQueue
	inbound map[int32]net.Conn // the live inbound connection per peer

	sent, received, dropped, rejected atomic.Uint64
}

type peerQueue struct {
	id     uint64
	q      chan *raftpb.Message
	ctx    context.Context // done on Close or RemovePeer
	cancel context.CancelFunc
}

// NewTransport returns a transport for node self. peers resolves node ids
// to internal listener addresses and must be safe for concurrent use.
func NewTransport(self uint64, peers func(uint64) (string, bool), cfg TransportConfig, h TransportHandler, logger *slog.Logger) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == 0 || self > math.MaxInt32 {
		return nil, fmt.Errorf("raftlog: transport: node id %d outside 1..%d", self, math.MaxInt32)
	}
	if peers == nil || h == nil {
		return nil, errors.New("raftlog: transport: peers resolver and handler are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{
		self: self, cfg: cfg, peers: peers, h: h,
		log:     logger.With("component", "raft-transport"),
		dialer:  link.Dialer{Secret: cfg.Secret, SelfID: int32(self), HandshakeTimeout: cfg.DialTimeout},
		ctx:     ctx,
		cancel:  cancel,
		out:     map[uint64]*peerQueue{},
		inbound: map[int32]net.Conn{},
	}, nil
}

// Send queues messages for their recipients without blocking. A message
// that does not fit its peer's queue is dropped, and the peer reported
// unreachable (and a snapshot failed).
func (t *Transport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		if to == t.self || to == 0 {
			continue
		}
		p := t.peer(to)
		if p == nil {
			return // closed
		}
		select {
		case p.q <- m:
		default:
			t.drop(m, true)
		}
	}
}

// drop accounts for a message that will not be sent; report says whether
// to tell raft the peer is unreachable (callers coalesce reports).
func (t *Transport) drop(m *raftpb.Message, report bool) {
	t.dropped.Add(1)
	if report {
		t.h.ReportUnreachable(m.GetTo())
	}
	if m.GetType() == raftpb.MsgSnap {
		t.h.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
	}
}

func (t *Transport) peer(id uint64) *peerQueue {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	p := t.out[id]
	if p == nil {
		p = &peerQueue{id: id, q: make(chan *raftpb.Message, t.cfg.QueueSize)}
		p.ctx, p.cancel = context.WithCancel(t.ctx)
		t.out[id] = p
		t.wg.Add(1)
		go t.runPeer(p)
	}
	return p
}

// runPeer owns the connection to one peer: dial, write queued messages,
// redial with backoff after a failure. While no connection is up, queued
// messages are dropped: raft resends what still matters.
func (t *Transport) runPeer(p *peerQueue) {
	defer t.wg.Done()
	backoff := t.cfg.BackoffMin
	failures := 0
	for p.ctx.Err() == nil {
		conn, err := t.dial(p)
		if err != nil {
			failures++
			lvl := slog.LevelDebug
			if failures == 1 {
				lvl = slog.LevelWarn
			}
			t.log.Log(p.ctx, lvl, "raft peer unreachable", "peer_id", p.id, "err", err, "failures", failures)
			t.h.ReportUnreachable(p.id)
			if !t.dropFor(p, backoff) {
				return
			}
			backoff = min(2*backoff, t.cfg.BackoffMax)
			continue
		}
		if failures > 0 {
			t.log.Info("raft peer reachable", "peer_id", p.id, "after_failures", failures)
		}
		failures, backoff = 0, t.cfg.BackoffMin
		err = t.writeLoop(p, conn)
		_ = conn.Close()
		if p.ctx.Err() != nil {
			return
		}
		t.log.Debug("raft connection lost", "peer_id", p.id, "err", err)
		t.h.ReportUnreachable(p.id)
	}
}

func (t *Transport) dial(p *peerQueue) (net.Conn, error) {
	id := p.id
	addr, ok := t.peers(id)
	if !ok {
		return nil, fmt.Errorf("raftlog: no address known for node %d", id)
	}
	ctx, cancel := context.WithTimeout(p.ctx, t.cfg.DialTimeout)
	defer cancel()
	conn, peerID, err := t.dialer.Dial(ctx, addr, link.PurposeRaft)
	if err != nil {
		return nil, err
	}
	if uint64(peerID) != id {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: %s answered as node %d, want %d", ErrWrongPeer, addr, peerID, id)
	}
	return conn, nil
}

// dropFor drops p's queued messages for d; false means the transport
// closed meanwhile.
func (t *Transport) dropFor(p *peerQueue, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case m := <-p.q:
			t.drop(m, false) // reported once per failed dial
		}
	}
}

// writeLoop writes p's queue to conn, a batch per flush, until a write
// fails or the transport closes. A reader goroutine watches for the peer
// closing the connection (it never sends on it), so a restarted peer is
// noticed at once instead of at the next failed write.
func (t *Transport) writeLoop(p *peerQueue, conn net.Conn) error {
	watch := make(chan struct{})
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer close(watch)
		_, _ = io.Copy(io.Discard, conn)
		_ = conn.Close()
	}()
	stop := context.AfterFunc(p.ctx, func() { _ = conn.Close() }) // unblock a stalled write on Close
	defer func() { stop(); _ = conn.Close(); <-watch }()

	bw := bufio.NewWriterSize(conn, 64<<10)
	var (
		buf   []byte
		batch []*raftpb.Message
	)
	for {
		var m *raftpb.Message
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-watch:
			return io.EOF
		case m = <-p.q:
		}
		batch = append(batch[:0], m)
		for len(batch) < 64 && len(p.q) > 0 {
			batch = append(batch, <-p.q)
		}
		size := 0
		var err error
		for i, m := range batch {
			buf, err = AppendMessageFrame(buf[:0], m)
			if err != nil {
				t.log.Error("raft message not sendable", "peer_id", p.id, "type", m.GetType(), "err", err)
				t.drop(m, false)
				batch[i] = nil
				continue
			}
			size += len(buf)
			if err := conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout + time.Duration(size>>20)*time.Second)); err != nil {
				return t.failBatch(batch, err)
			}
			if _, err := bw.Write(buf); err != nil {
				return t.failBatch(batch, err)
			}
		}
		if err := bw.Flush(); err != nil {
			return t.failBatch(batch, err)
		}
		if cap(buf) > frameChunk {
			buf = nil // do not pin a snapshot-sized buffer
		}
		for i, m := range batch {
			if m == nil {
				continue
			}
			t.sent.Add(1)
			if m.GetType() == raftpb.MsgSnap {
				t.log.Info("raft snapshot sent", "peer_id", p.id, "index", m.GetSnapshot().GetMetadata().GetIndex())
				t.h.ReportSnapshot(p.id, raft.SnapshotFinish)
			}
			batch[i] = nil
		}
	}
}

func (t *Transport) failBatch(batch []*raftpb.Message, err error) error {
	for _, m := range batch {
		if m != nil {
			t.drop(m, false)
		}
	}
	return err
}

// Serve reads raft messages from conn, an inbound connection that the
// internal listener authenticated as node peerID for purpose 'R', and
// hands them to the handler. It returns when the connection fails, a
// message is malformed or misaddressed (the connection is closed: a peer
// can only speak for itself), or the transport closes; conn is closed on
// return. Run it on its own goroutine.
func (t *Transport) Serve(conn net.Conn, peerID int32) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = conn.Close()
		return ErrStopped
	}
	// A peer keeps one connection to us; a new one means it redialled, and
	// the old one (possibly half-open after a crash) is closed.
	if old := t.inbound[peerID]; old != nil {
		_ = old.Close()
	}
	t.inbound[peerID] = conn
	t.wg.Add(1)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.inbound[peerID] == conn {
			delete(t.inbound, peerID)
		}
		t.mu.Unlock()
		_ = conn.Close()
		t.wg.Done()
	}()

	from := uint64(peerID)
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		m, err := ReadMessageFrame(br, t.cfg.MaxFrameSize)
		if err != nil {
			if t.ctx.Err() != nil {
				return ErrStopped
			}
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame) {
				t.rejected.Add(1)
				t.log.Warn("raft connection rejected", "peer_id", peerID, "remote", conn.RemoteAddr(), "err", err)
			}
			return err
		}
		if m.GetFrom() != from || m.GetTo() != t.self {
			t.rejected.Add(1)
			err := fmt.Errorf("%w: link authenticated node %d, message %v from %d to %d",
				ErrWrongPeer, peerID, m.GetType(), m.GetFrom(), m.GetTo())
			t.log.Warn("raft connection rejected", "peer_id", peerID, "remote", conn.RemoteAddr(), "err", err)
			return err
		}
		t.received.Add(1)
		if err := t.h.Receive(t.ctx, m); err != nil {
			return err
		}
	}
}

// RemovePeer stops the goroutine and connection to node id (removed from
// the configuration). A later Send to it starts them again.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.out[id]
	delete(t.out, id)
	t.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// Stats returns the transport's counters.
func (t *Transport) Stats() TransportStats {
	return TransportStats{
		Sent: t.sent.Load(), Received: t.received.Load(),
		Dropped: t.dropped.Load(), Rejected: t.rejected.Load(),
	}
}

// Close stops every peer goroutine, closes every connection (dialled and
// served) and waits for them. It is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	for _, c := range t.inbound {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}
