package raftlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// DefaultMaxPendingDeltas bounds the deltas a MetaSubscription holds for a
// reader that does not keep up.
const DefaultMaxPendingDeltas = 10_000

// MetaResult is the result MetaMachine.Apply returns for a command, which
// Node.Propose hands back as its result: the Delta (empty when the command
// changed nothing or was rejected) and the rejection, wrapping one of
// meta's Err* sentinels (or meta's decoding error).
type MetaResult struct {
	Delta meta.Delta
	Err   error
}

// MetaMachine is the StateMachine of the metadata log: it applies
// meta.Commands to a meta.Image.
//
// The current image is held in an atomic pointer: Image() returns an
// immutable image without locking, from any goroutine. Each applied change
// is also published to subscribers (Subscribe), without ever blocking the
// raft goroutine.
type MetaMachine struct {
	img        atomic.Pointer[meta.Image]
	log        *slog.Logger
	maxPending int

	mu   sync.Mutex
	subs map[*MetaSubscription]struct{}
}

var _ StateMachine = (*MetaMachine)(nil)

// NewMetaMachine returns a machine holding the empty image. maxPending
// bounds each subscription's queued deltas (0: DefaultMaxPendingDeltas);
// logger may be nil.
func NewMetaMachine(maxPending int, logger *slog.Logger) *MetaMachine {
	if maxPending <= 0 {
		maxPending = DefaultMaxPendingDeltas
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &MetaMachine{log: logger, maxPending: maxPending, subs: map[*MetaSubscription]struct{}{}}
	m.img.Store(&meta.Image{})
	return m
}

// Image returns the current image. It is immutable and safe to read from
// any goroutine while later commands are applied.
func (m *MetaMachine) Image() *meta.Image { return m.img.Load() }

// Apply implements StateMachine: it decodes and applies one command and
// returns a MetaResult.
func (m *MetaMachine) Apply(index uint64, data []byte) any {
	cmd, err := meta.DecodeCommand(data)
	if err != nil {
		return MetaResult{Err: fmt.Errorf("raftlog: command at index %d: %w", index, err)}
	}
	img, delta, err := meta.Apply(m.img.Load(), index, cmd)
	if err != nil {
		m.log.Debug("metadata command rejected", "index", index, "type", cmd.Type(), "err", err)
		return MetaResult{Err: err}
	}
	if delta.Empty() {
		return MetaResult{}
	}
	m.img.Store(img)
	m.publish(img, &delta)
	return MetaResult{Delta: delta}
}

// Snapshot implements StateMachine.
func (m *MetaMachine) Snapshot() ([]byte, error) { return meta.EncodeImage(m.img.Load()), nil }

// Restore implements StateMachine. Subscribers see a Reset update.
func (m *MetaMachine) Restore(data []byte, index uint64) error {
	img, err := meta.DecodeImage(data)
	if err != nil {
		return fmt.Errorf("raftlog: metadata snapshot at %d: %w", index, err)
	}
	if img.Index() > index {
		return fmt.Errorf("raftlog: metadata snapshot at %d holds image index %d", index, img.Index())
	}
	m.img.Store(img)
	m.publish(img, nil)
	return nil
}

func (m *MetaMachine) publish(img *meta.Image, d *meta.Delta) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		s.push(img, d, m.maxPending)
	}
}

// Subscribe returns a subscription to every change applied from now on.
// Its first update is a Reset carrying the current image, so a subscriber
// starts from a consistent view.
func (m *MetaMachine) Subscribe() *MetaSubscription {
	s := &MetaSubscription{m: m, ready: make(chan struct{}, 1)}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.push(m.img.Load(), nil, m.maxPending)
	m.subs[s] = struct{}{}
	return s
}

// MetaUpdate is what a subscriber reads: the newest image and the deltas
// applied since its previous read, in log order, with Image reflecting all
// of them.
type MetaUpdate struct {
	Image *meta.Image
	// Deltas since the previous read. Complete unless Reset is set.
	Deltas []meta.Delta
	// Reset means the deltas since the previous read are incomplete: the
	// first update, a snapshot restored from the leader, or more than the
	// bound of deltas queued. Deltas then holds only those after the gap
	// (possibly none); the reader reconciles its state against Image.
	Reset bool
}

// ErrUnsubscribed reports a read from a closed subscription.
var ErrUnsubscribed = errors.New("raftlog: subscription closed")

// MetaSubscription receives a MetaMachine's changes. The raft goroutine
// never waits for it: changes accumulate in the subscription (image
// replaced by the newest, deltas appended) until read. Delivery rule: a
// reader sees every delta, in order, unless the update says Reset, and then
// it has the full image to reconcile with; it never silently misses one.
// A subscription is for one reader goroutine.
type MetaSubscription struct {
	m     *MetaMachine
	ready chan struct{} // capacity 1: an update is pending

	mu      sync.Mutex
	pending bool
	closed  bool
	upd     MetaUpdate
}

func (s *MetaSubscription) push(img *meta.Image, d *meta.Delta, maxPending int) {
	s.mu.Lock()
	s.upd.Image = img
	switch {
	case d == nil:
		s.upd.Reset, s.upd.Deltas = true, nil
	case len(s.upd.Deltas) >= maxPending:
		s.upd.Reset, s.upd.Deltas = true, append(s.upd.Deltas[:0], *d)
	default:
		s.upd.Deltas = append(s.upd.Deltas, *d)
	}
	s.pending = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready returns a channel that receives a value when an update is
// pending; then call Next or TryNext.
func (s *MetaSubscription) Ready() <-chan struct{} { return s.ready }

// TryNext returns the pending update, if any, without waiting.
func (s *MetaSubscription) TryNext() (MetaUpdate, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending {
		return MetaUpdate{}, false
	}
	u := s.upd
	s.upd = MetaUpdate{Image: u.Image}
	s.pending = false
	return u, true
}

// Next waits for the next update.
func (s *MetaSubscription) Next(ctx context.Context) (MetaUpdate, error) {
	for {
		if u, ok := s.TryNext(); ok {
			return u, nil
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return MetaUpdate{}, ErrUnsubscribed
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return MetaUpdate{}, ctx.Err()
		}
	}
}

// Close ends the subscription. It is idempotent.
func (s *MetaSubscription) Close() {
	s.m.mu.Lock()
	delete(s.m.subs, s)
	s.m.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// ProposeCommand proposes cmd through n, whose state machine must be a
// MetaMachine, and returns the command's log index and Delta. A command
// that the state machine rejected returns its rejection (errors.Is one of
// meta's Err* sentinels) along with the index it was committed at.
func ProposeCommand(ctx context.Context, n *Node, cmd meta.Command) (uint64, meta.Delta, error) {
	index, result, err := n.Propose(ctx, meta.EncodeCommand(cmd))
	if err != nil {
		return index, meta.Delta{}, err
	}
	r, ok := result.(MetaResult)
	if !ok {
		return index, meta.Delta{}, fmt.Errorf("raftlog: state machine result %T is not a MetaResult", result)
	}
	return index, r.Delta, r.Err
}
