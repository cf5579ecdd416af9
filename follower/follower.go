package follower

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/wire"
)

// ErrStale reports that a replica's role changed under a fetch (it leads now, follows another
// leader or epoch, or was deleted): the fetcher drops what it was about to apply.
var ErrStale = errors.New("follower: replica role changed")

// Key names a partition.
type Key struct {
	TopicID   [16]byte
	Partition int32
}

// Replica is a local follower replica as the fetchers need it; the broker's partition implements it.
// Every method takes the leader epoch the fetcher follows and returns ErrStale (wrapped) when the
// replica is no longer a follower in that epoch, without changing anything.
type Replica interface {
	// FetchPosition is where the next fetch starts: the log end offset and the leader epoch of the
	// last batch (-1 when the log has none).
	FetchPosition() (offset int64, lastEpoch int32)
	// Diverged truncates the log after the leader answered with a diverging epoch (Fetch v12+).
	Diverged(leaderEpoch int32, div wire.EpochEndOffset) error
	// OutOfRange restarts the log at the leader's log start (the follower fell below it).
	OutOfRange(leaderEpoch int32, leaderLogStart int64) error
	// Append writes the leader's record batches verbatim and returns a wait for their durability,
	// so that a response covering many partitions costs one round of fdatasyncs.
	Append(leaderEpoch int32, records []byte) (wait func() error, err error)
	// Fetched reports, after the appends are durable, the leader's HW and log start.
	Fetched(leaderEpoch int32, leaderHW, leaderLogStart int64) error
}

// Assignment tells a fetcher which leader a replica follows.
type Assignment struct {
	Topic       string // for logs
	Leader      int32
	LeaderEpoch int32
	Replica     Replica
}

// Config configures a Manager.
type Config struct {
	// NodeID is this broker's id, sent as the replica id.
	NodeID int32
	// BrokerEpoch returns this broker's current broker epoch (Fetch v15 ReplicaState).
	BrokerEpoch func() int64
	// Dial opens an authenticated internal connection for replica fetches to a broker.
	Dial func(ctx context.Context, nodeID int32) (net.Conn, error)
	// MaxWait is the fetch long-poll (replica.fetch.wait.max.ms); zero means 500 ms.
	MaxWait time.Duration
	// MaxBytes bounds a response (replica.fetch.response.max.bytes); zero means 10 MiB.
	MaxBytes int32
	// PartitionMaxBytes bounds one partition (replica.fetch.max.bytes); zero means 1 MiB.
	PartitionMaxBytes int32
	// Backoff is the wait after an error (replica.fetch.backoff.ms); zero means 1 s.
	Backoff time.Duration
	// MaxFrameBytes bounds a response frame; zero means 64 MiB.
	MaxFrameBytes int32
	// ThrottleBytesPerSec bounds the record bytes all fetchers of this broker receive per second
	// (a replication throttle, KIP-73 style, on the follower side), so a replica catching up does
	// not take the whole network or disk from producers. Zero (the default) means no throttle.
	ThrottleBytesPerSec int64
	// OnReceived is told the record bytes each response brought (metrics); may be nil.
	OnReceived func(n int)
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 10 << 20
	}
	if c.PartitionMaxBytes <= 0 {
		c.PartitionMaxBytes = 1 << 20
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BrokerEpoch == nil {
		c.BrokerEpoch = func() int64 { return -1 }
	}
	return c
}

// Manager runs one fetcher per source broker; each fetches every partition this broker follows
// from that leader in one request. Safe for concurrent use.
type Manager struct {
	cfg      Config
	throttle *throttle

	mu       sync.Mutex
	closed   bool
	fetchers map[int32]*fetcher // by leader id
	where    map[Key]int32      // partition -> leader whose fetcher has it
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewManager returns a Manager with no partitions.
func NewManager(cfg Config) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg.withDefaults(), throttle: newThrottle(cfg.ThrottleBytesPerSec, time.Now()),
		fetchers: map[int32]*fetcher{}, where: map[Key]int32{}, ctx: ctx, cancel: cancel}
}

// Set makes the partition follow a.Leader in a.LeaderEpoch, moving it between fetchers when the
// leader changed. It takes effect for the next request; a response in flight for an older
// assignment is not applied (the replica refuses the old epoch).
func (m *Manager) Set(k Key, a Assignment) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if old, ok := m.where[k]; ok && old != a.Leader {
		m.removeLocked(k, old)
	}
	f := m.fetchers[a.Leader]
	if f == nil {
		f = newFetcher(m.cfg, a.Leader, m.throttle)
		ctx, cancel := context.WithCancel(m.ctx)
		f.stop = cancel
		m.fetchers[a.Leader] = f
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			f.run(ctx)
		}()
	}
	m.where[k] = a.Leader
	f.set(k, a)
}

// Remove stops fetching the partition (it leads now, or was deleted).
func (m *Manager) Remove(k Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.where[k]; ok {
		m.removeLocked(k, old)
	}
}

// removeLocked takes k off leader's fetcher, stopping the fetcher when it has nothing left.
func (m *Manager) removeLocked(k Key, leader int32) {
	delete(m.where, k)
	f := m.fetchers[leader]
	if f.remove(k) == 0 {
		f.stop()
		delete(m.fetchers, leader)
	}
}

// Close stops every fetcher and waits for them. Idempotent.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// FetchVersion is the Fetch version replica fetchers send: v15 carries the broker epoch in
// ReplicaState (KIP-903) and, like v12+, the diverging epoch and last fetched epoch.
const FetchVersion int16 = 15

// fetcher fetches from one leader.
type fetcher struct {
	cfg      Config
	leader   int32
	stop     context.CancelFunc
	throttle *throttle // shared by the broker's fetchers; nil: none

	mu    sync.Mutex
	parts map[Key]*partState
	wake  chan struct{}
}

type partState struct {
	a          Assignment
	retryAfter time.Time // after an error for this partition alone
}

func newFetcher(cfg Config, leader int32, th *throttle) *fetcher {
	return &fetcher{cfg: cfg, leader: leader, throttle: th, parts: map[Key]*partState{}, wake: make(chan struct{}, 1)}
}

func (f *fetcher) set(k Key, a Assignment) {
	f.mu.Lock()
	f.parts[k] = &partState{a: a}
	f.mu.Unlock()
	f.kick()
}

// remove drops k and returns how many partitions are left.
func (f *fetcher) remove(k Key) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.parts, k)
	return len(f.parts)
}

func (f *fetcher) kick() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run fetches until ctx ends, over one connection, redialled after errors.
func (f *fetcher) run(ctx context.Context) {
	var (
		conn     net.Conn
		stopConn func() bool
		corr     int32
		rbuf     []byte
		sess     session
	)
	closeConn := func() {
		sess.reset() // the session lives on the connection
		if conn != nil {
			stopConn()
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	lg := f.cfg.Logger.With("leader", f.leader)
	for ctx.Err() == nil {
		allowed, wait := f.throttle.allowance(time.Now(), f.cfg.MaxBytes)
		if wait > 0 {
			if !f.sleep(ctx, wait) { // throttled: wait until the bucket has bytes again
				return
			}
			continue
		}
		req, sent := f.buildRequest(time.Now(), &sess)
		req.MaxBytes = allowed
		if len(sent) == 0 {
			// Nothing to fetch (all removed or backing off): wait for work or the first retry.
			if !f.sleep(ctx, f.untilRetry(time.Now())) {
				return
			}
			continue
		}
		if conn == nil {
			var err error
			conn, err = f.cfg.Dial(ctx, f.leader)
			if err != nil {
				lg.Debug("replica fetcher: dial", "err", err)
				if !f.sleep(ctx, f.cfg.Backoff) {
					return
				}
				continue
			}
			c := conn
			stopConn = context.AfterFunc(ctx, func() { c.Close() })
		}
		corr++
		resp, frame, err := f.roundTrip(conn, req, corr, rbuf)
		rbuf = frame[:0]
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			lg.Info("replica fetcher: connection failed", "err", err)
			closeConn()
			if !f.sleep(ctx, f.cfg.Backoff) {
				return
			}
			continue
		}
		if resp.ErrorCode != 0 {
			sess.reset() // FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, or worse: start over
			lg.Warn("replica fetcher: leader answered with an error; starting over", "code", wire.CodeName(resp.ErrorCode))
			if !f.sleep(ctx, f.cfg.Backoff) {
				return
			}
			continue
		}
		if sess.id == 0 {
			sess.id = resp.SessionID // 0: the leader keeps no session; every request stays full
			if sess.id == 0 {
				sess.sent = nil
			}
		} else {
			sess.epoch++
		}
		f.apply(lg, sent, resp)
	}
}

// untilRetry is how long until the first backed-off partition may be fetched again (at most Backoff).
func (f *fetcher) untilRetry(now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.cfg.Backoff
	for _, ps := range f.parts {
		d = min(d, max(ps.retryAfter.Sub(now), time.Millisecond))
	}
	return d
}

// sleep waits for d or a kick; false when ctx ended.
func (f *fetcher) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-f.wake:
	}
	return true
}

// session is the fetcher's incremental fetch session (KIP-227) with its leader, owned by the run
// goroutine. id 0: none yet (the next request is full and asks for one).
type session struct {
	id    int32
	epoch int32
	sent  map[Key]sentPos // what the leader holds for each partition of the session
}

// sentPos is a partition's fetch position as last sent.
type sentPos struct {
	offset      int64
	lastEpoch   int32
	leaderEpoch int32
}

func (s *session) reset() { *s = session{} }

// sentPart is a partition in a request, with the assignment it was sent under.
type sentPart struct {
	k Key
	a Assignment
}

// buildRequest builds the next Fetch. Without a session it lists every partition that is not
// backing off and asks for a session (epoch 0); within one it lists only partitions that are new or
// whose position changed, and forgets those removed or backing off. sent holds every partition the
// leader will answer for, whether listed or not.
func (f *fetcher) buildRequest(now time.Time, sess *session) (*kmsg.FetchRequest, []sentPart) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req := kmsg.NewPtrFetchRequest()
	req.Version = FetchVersion
	req.ReplicaID = f.cfg.NodeID
	req.ReplicaState.ID = f.cfg.NodeID
	req.ReplicaState.Epoch = f.cfg.BrokerEpoch()
	req.MaxWaitMillis = int32(f.cfg.MaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = f.cfg.MaxBytes
	req.IsolationLevel = 0
	full := sess.id == 0
	if full {
		req.SessionID, req.SessionEpoch = 0, 0
		sess.sent = map[Key]sentPos{}
	} else {
		req.SessionID, req.SessionEpoch = sess.id, sess.epoch+1
	}
	byTopic := map[[16]byte]int{}
	var sent []sentPart
	for k, ps := range f.parts {
		if now.Before(ps.retryAfter) {
			continue
		}
		off, lastEpoch := ps.a.Replica.FetchPosition()
		sent = append(sent, sentPart{k: k, a: ps.a})
		pos := sentPos{offset: off, lastEpoch: lastEpoch, leaderEpoch: ps.a.LeaderEpoch}
		if old, ok := sess.sent[k]; ok && old == pos {
			continue // the leader has it
		}
		sess.sent[k] = pos
		ti, ok := byTopic[k.TopicID]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = k.TopicID
			t.Topic = ps.a.Topic
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
			byTopic[k.TopicID] = ti
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = k.Partition
		p.CurrentLeaderEpoch = ps.a.LeaderEpoch
		p.FetchOffset = off
		p.LastFetchedEpoch = lastEpoch
		p.LogStartOffset = -1
		p.PartitionMaxBytes = f.cfg.PartitionMaxBytes
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, p)
	}
	// Forget what the leader holds but this request does not stand for.
	forgot := map[[16]byte]int{}
	for k := range sess.sent {
		if ps := f.parts[k]; ps != nil && !now.Before(ps.retryAfter) {
			continue
		}
		delete(sess.sent, k)
		fi, ok := forgot[k.TopicID]
		if !ok {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.TopicID = k.TopicID
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
			fi = len(req.ForgottenTopics) - 1
			forgot[k.TopicID] = fi
		}
		req.ForgottenTopics[fi].Partitions = append(req.ForgottenTopics[fi].Partitions, k.Partition)
	}
	return req, sent
}

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-replica"))

// roundTrip writes req and reads its response into buf (reused; records alias it).
func (f *fetcher) roundTrip(conn net.Conn, req *kmsg.FetchRequest, corr int32, buf []byte) (*kmsg.FetchResponse, []byte, error) {
	deadline := time.Now().Add(f.cfg.MaxWait + 30*time.Second)
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(formatter.AppendRequest(nil, req, corr)); err != nil {
		return nil, buf, fmt.Errorf("write fetch: %w", err)
	}
	frame, err := wire.ReadFrame(conn, f.cfg.MaxFrameBytes, buf)
	if err != nil {
		return nil, buf, fmt.Errorf("read fetch response: %w", err)
	}
	resp := kmsg.NewPtrFetchResponse()
	if err := wire.ReadResponse(frame, corr, req, resp); err != nil {
		return nil, frame, err
	}
	return resp, frame, nil
}

// apply hands each partition's answer to its replica: truncation, appends (then one wait for all
// their fdatasyncs), then the leader's HW and log start.
func (f *fetcher) apply(lg *slog.Logger, sent []sentPart, resp *kmsg.FetchResponse) {
	bySent := make(map[Key]Assignment, len(sent))
	for _, s := range sent {
		bySent[s.k] = s.a
	}
	type appended struct {
		k    Key
		a    Assignment
		wait func() error
		hw   int64
		ls   int64
	}
	var done []appended
	received := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			k := Key{TopicID: t.TopicID, Partition: p.Partition}
			a, ok := bySent[k]
			if !ok {
				continue // not asked for: ignore
			}
			plg := lg.With("topic", a.Topic, "partition", p.Partition)
			var err error
			switch p.ErrorCode {
			case wire.CodeNone:
				switch {
				case p.DivergingEpoch.Epoch >= 0 || p.DivergingEpoch.EndOffset >= 0:
					err = a.Replica.Diverged(a.LeaderEpoch, wire.EpochEndOffset{Epoch: p.DivergingEpoch.Epoch, EndOffset: p.DivergingEpoch.EndOffset})
				case len(p.RecordBatches) > 0:
					var wait func() error
					wait, err = a.Replica.Append(a.LeaderEpoch, p.RecordBatches)
					if err == nil {
						received += len(p.RecordBatches)
						done = append(done, appended{k: k, a: a, wait: wait, hw: p.HighWatermark, ls: p.LogStartOffset})
					}
				default:
					done = append(done, appended{k: k, a: a, hw: p.HighWatermark, ls: p.LogStartOffset})
				}
			case wire.CodeOffsetOutOfRange:
				err = a.Replica.OutOfRange(a.LeaderEpoch, p.LogStartOffset)
			case wire.CodeUnknownLeaderEpoch:
				// The leader has not applied the leader epoch this follower acts on yet: it will in
				// milliseconds, so retry soon instead of after the full backoff, which would hold the
				// new leader's high watermark (and every acks=all write) for that long after a
				// failover. (UNKNOWN_TOPIC_ID, a topic the leader has not applied yet, keeps the full
				// backoff: retrying thousands of new partitions every few milliseconds slows the very
				// metadata apply they wait for.)
				err = &retrySoonError{code: p.ErrorCode}
			default:
				err = fmt.Errorf("leader answered %s", wire.CodeName(p.ErrorCode))
			}
			if err != nil {
				f.partitionFailed(k, a, plg, err)
			}
		}
	}
	for _, d := range done {
		if d.wait != nil {
			if err := d.wait(); err != nil {
				f.partitionFailed(d.k, d.a, lg.With("topic", d.a.Topic, "partition", d.k.Partition), err)
				continue
			}
		}
		if err := d.a.Replica.Fetched(d.a.LeaderEpoch, d.hw, d.ls); err != nil {
			f.partitionFailed(d.k, d.a, lg, err)
		}
	}
	f.throttle.spend(time.Now(), received)
	if received > 0 && f.cfg.OnReceived != nil {
		f.cfg.OnReceived(received)
	}
}

// partitionFailed backs one partition off (a stale role is dropped silently: new metadata moves it).
func (f *fetcher) partitionFailed(k Key, a Assignment, lg *slog.Logger, err error) {
	if errors.Is(err, ErrStale) {
		return
	}
	backoff := f.cfg.Backoff
	var soon *retrySoonError
	if errors.As(err, &soon) {
		backoff = min(backoff, RetrySoonBackoff)
		lg.Debug("replica fetch: leader behind on metadata; retrying soon", "err", err)
	} else {
		lg.Warn("replica fetch failed; backing off", "err", err)
	}
	f.mu.Lock()
	if ps := f.parts[k]; ps != nil && ps.a.LeaderEpoch == a.LeaderEpoch {
		ps.retryAfter = time.Now().Add(backoff)
	}
	f.mu.Unlock()
}

// RetrySoonBackoff is the wait after UNKNOWN_LEADER_EPOCH: the leader is a moment behind on
// metadata, not failing.
const RetrySoonBackoff = 100 * time.Millisecond

// retrySoonError is a partition error that clears by itself once the leader applies metadata.
type retrySoonError struct{ code int16 }

func (e *retrySoonError) Error() string { return "leader answered " + wire.CodeName(e.code) }
