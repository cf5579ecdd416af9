package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrShutdown reports a call on a Membership that has been shut down.
var ErrShutdown = errors.New("gossip: membership shut down")

// Membership is this broker's view of the cluster's brokers. It is safe for
// concurrent use. It owns memberlist's goroutines, one prober goroutine
// (plus at most one short-lived ping per member), and one goroutine that
// delivers OnChange events; Shutdown stops them all.
type Membership struct {
	cfg  Config
	log  *slog.Logger
	ml   *memberlist.Memberlist
	self string // memberlist node name

	mu        sync.Mutex
	metaBytes []byte
	members   map[string]*entry // by memberlist node name
	queue     []Member          // OnChange events not yet delivered
	left      bool              // Leave was called

	wake chan struct{} // cap 1: queue grew
	done chan struct{} // closed by Shutdown
	wg   sync.WaitGroup

	// life is held shared by calls into memberlist that must not overlap
	// its Shutdown (memberlist panics on Leave after Shutdown) and
	// exclusively by Shutdown.
	life         sync.RWMutex
	shutdownOnce sync.Once
	shutdownErr  error

	dropped      atomic.Uint64
	rejectedMeta atomic.Uint64
}

type entry struct {
	member  Member
	udp     *net.UDPAddr // for our own pings
	misses  int          // consecutive failed pings
	probing bool         // a ping is in flight
}

// Start validates cfg, binds the gossip port and starts gossiping. It does
// not contact anyone: call Join.
func Start(cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxPendingEvents == 0 {
		cfg.MaxPendingEvents = DefaultConfig().MaxPendingEvents
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	meta, err := cfg.Meta.MarshalBinary()
	if err != nil {
		return nil, err
	}
	m := &Membership{
		cfg:       cfg,
		log:       log.With("node_id", cfg.NodeID),
		self:      nodeName(cfg.NodeID),
		metaBytes: meta,
		members:   make(map[string]*entry),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	mc, err := cfg.memberlistConfig(&delegates{m: m}, log)
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	m.wg.Add(2)
	go m.probeLoop()
	go m.deliverLoop()
	m.log.Info("gossip: started", "addr", m.Addr())
	return m, nil
}

// Addr returns the gossip address other members reach us at (with the real
// port when BindAddr asked for port 0).
func (m *Membership) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.members[m.self]; ok {
		return e.member.Addr
	}
	return m.cfg.BindAddr
}

// Join contacts the given gossip addresses, or Config.Seeds when none are
// given, and merges state with every one that answers. It returns how many
// answered; it fails only if none did. Joining with no seeds at all is a
// no-op (a cluster's first broker).
func (m *Membership) Join(seeds ...string) (int, error) {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.isShutdown() {
		return 0, ErrShutdown
	}
	if len(seeds) == 0 {
		seeds = m.cfg.Seeds
	}
	if len(seeds) == 0 {
		return 0, nil
	}
	n, err := m.ml.Join(seeds)
	if err != nil {
		return n, fmt.Errorf("gossip: join %v: %w", seeds, err)
	}
	m.log.Info("gossip: joined", "seeds", seeds, "answered", n)
	return n, nil
}

// Leave announces a graceful departure and waits up to timeout for each of
// its two steps to be gossiped: first our meta with Leaving set, then
// memberlist's leave message. Members that saw both report this node as
// Left; one that missed the meta (gossip is best effort) reports Dead. Call
// Shutdown after.
func (m *Membership) Leave(timeout time.Duration) error {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.isShutdown() {
		return ErrShutdown
	}
	m.mu.Lock()
	var meta NodeMeta
	err := meta.UnmarshalBinary(m.metaBytes)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gossip: leave: own meta: %w", err)
	}
	meta.Leaving = true
	if err := m.setMeta(meta, timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	m.mu.Lock()
	m.left = true
	m.mu.Unlock()
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip without announcing anything: to the others this
// looks like a crash unless Leave came first. It waits for a Join, Leave or
// SetMeta in progress (each bounded by its timeout or memberlist's TCP
// timeout) and for the goroutines it owns; events not yet delivered are
// dropped. It is idempotent.
func (m *Membership) Shutdown() error {
	m.shutdownOnce.Do(func() {
		m.life.Lock() // waits for a Join, Leave or SetMeta in progress
		defer m.life.Unlock()
		close(m.done)
		m.wg.Wait() // prober and pings first: they use m.ml
		if err := m.ml.Shutdown(); err != nil {
			m.shutdownErr = fmt.Errorf("gossip: shutdown: %w", err)
		}
	})
	return m.shutdownErr
}

func (m *Membership) isShutdown() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// SetMeta replaces our node meta (for example a new incarnation or address)
// and gossips it, waiting up to timeout for the broadcast.
func (m *Membership) SetMeta(meta NodeMeta, timeout time.Duration) error {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.isShutdown() {
		return ErrShutdown
	}
	return m.setMeta(meta, timeout)
}

func (m *Membership) setMeta(meta NodeMeta, timeout time.Duration) error {
	if meta.NodeID != m.cfg.NodeID {
		return fmt.Errorf("gossip: SetMeta for node %d on node %d", meta.NodeID, m.cfg.NodeID)
	}
	b, err := meta.MarshalBinary()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.metaBytes = b
	m.mu.Unlock()
	if err := m.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossip: update meta: %w", err)
	}
	return nil
}

// Members returns every broker this node knows of, itself included, sorted
// by node id. Dead and left members stay listed (until they return); a
// member is keyed by node id, so the list is bounded by the number of ids.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		out = append(out, e.member)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return int(a.Meta.NodeID) - int(b.Meta.NodeID) })
	return out
}

// Member returns the member with node id id, if known.
func (m *Membership) Member(id int32) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[nodeName(id)]
	if !ok {
		return Member{}, false
	}
	return e.member, true
}

// Stats returns a snapshot of the counters.
func (m *Membership) Stats() Stats {
	s := Stats{DroppedEvents: m.dropped.Load(), RejectedMeta: m.rejectedMeta.Load()}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.members {
		switch e.member.State {
		case StateAlive:
			s.Alive++
		case StateSuspect:
			s.Suspect++
		case StateDead:
			s.Dead++
		case StateLeft:
			s.Left++
		}
	}
	return s
}

// observe applies a memberlist event. Called with memberlist's node lock
// held (see delegates).
func (m *Membership) observe(n *memberlist.Node, st State) {
	meta, err := decodeNodeMeta(n)
	if err != nil {
		// NotifyAlive refused such nodes already; only our own meta or a
		// leave of a node we never admitted can get here.
		m.log.Warn("gossip: ignoring member with bad meta", "node", n.Name, "err", err)
		return
	}
	if st == StateDead && meta.Leaving {
		st = StateLeft
	}
	addr := nodeAddr(n)
	udp := &net.UDPAddr{IP: append(net.IP(nil), n.Addr...), Port: int(n.Port)}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[n.Name]
	if !ok {
		e = &entry{}
		m.members[n.Name] = e
	}
	prev := e.member
	e.member = Member{Meta: meta, State: st, Addr: addr}
	e.udp = udp
	// Join and update come from alive messages, which only the member
	// itself originates: fresh evidence that it runs, so suspicion resets.
	e.misses = 0
	if ok && prev == e.member {
		return
	}
	m.logTransition(prev, e.member, ok)
	m.enqueueLocked(e.member)
}

// pingResult records a direct ping to name: success clears suspicion,
// SuspectMisses failures in a row raise it.
func (m *Membership) pingResult(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[name]
	if !ok {
		return
	}
	st := e.member.State
	if st != StateAlive && st != StateSuspect {
		return // memberlist's verdict (dead, left) stands until it changes it
	}
	if err == nil {
		e.misses = 0
		if st == StateSuspect {
			prev := e.member
			e.member.State = StateAlive
			m.logTransition(prev, e.member, true)
			m.enqueueLocked(e.member)
		}
		return
	}
	e.misses++
	if st == StateAlive && e.misses >= m.cfg.SuspectMisses {
		prev := e.member
		e.member.State = StateSuspect
		m.logTransition(prev, e.member, true)
		m.enqueueLocked(e.member)
	}
}

func (m *Membership) logTransition(prev, cur Member, known bool) {
	if !known || prev.State != cur.State {
		from := "unknown"
		if known {
			from = prev.State.String()
		}
		m.log.Info("gossip: member state", "member_id", cur.Meta.NodeID, "addr", cur.Addr,
			"from", from, "to", cur.State.String())
		return
	}
	m.log.Info("gossip: member meta changed", "member_id", cur.Meta.NodeID, "addr", cur.Addr,
		"incarnation", cur.Meta.Incarnation)
}

// enqueueLocked queues an OnChange event; m.mu must be held.
func (m *Membership) enqueueLocked(ev Member) {
	if m.cfg.OnChange == nil {
		return
	}
	if len(m.queue) >= m.cfg.MaxPendingEvents {
		m.dropped.Add(1)
		return
	}
	m.queue = append(m.queue, ev)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// deliverLoop calls OnChange for queued events, in order, until Shutdown.
func (m *Membership) deliverLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.wake:
		case <-m.done:
			return
		}
		m.mu.Lock()
		batch := m.queue
		m.queue = nil
		m.mu.Unlock()
		for _, ev := range batch {
			if m.isShutdown() {
				return
			}
			m.cfg.OnChange(ev)
		}
	}
}
