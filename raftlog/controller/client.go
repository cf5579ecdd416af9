package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// MaxMessageSize bounds one response. Zero means 8 MiB.
	MaxMessageSize int
	// RetryBackoffMin and RetryBackoffMax bound the wait between attempts
	// (doubling) when no controller is known or a call failed. Zero means
	// 20ms and 500ms.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// RequestTimeout bounds one attempt when ctx has no earlier deadline.
	// Zero means 15s.
	RequestTimeout time.Duration
	// MaxIdleConns is how many idle connections per controller are kept
	// for reuse. Zero means 4.
	MaxIdleConns int
	// Logger receives retries at Debug; nil discards.
	Logger *slog.Logger
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultConfig().MaxMessageSize
	}
	if c.RetryBackoffMin <= 0 {
		c.RetryBackoffMin = 20 * time.Millisecond
	}
	if c.RetryBackoffMax < c.RetryBackoffMin {
		c.RetryBackoffMax = max(500*time.Millisecond, c.RetryBackoffMin)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultConfig().RequestTimeout
	}
	if c.MaxIdleConns <= 0 {
		c.MaxIdleConns = 4
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client calls the controller. Each call goes to the current controller:
// the node last named in a NOT_CONTROLLER answer, else leader() (the local
// raft node's view); it is retried, with backoff and over a fresh
// connection after an error, until it gets an answer or ctx ends. Calls
// may run concurrently: each uses its own connection (idle ones are
// pooled). A Propose retried after a lost answer may be committed twice;
// the commands it forwards are fenced or idempotent by their content.
type Client struct {
	dial   func(ctx context.Context, nodeID int32) (net.Conn, error)
	leader func() int32
	cfg    ClientConfig
	log    *slog.Logger

	mu     sync.Mutex
	idle   map[int32][]net.Conn
	hint   int32 // controller named by the last NOT_CONTROLLER
	closed bool
}

// NewClient returns a client that reaches node ids with dial (a link
// connection of purpose 'C') and learns the controller from leader (0:
// unknown).
func NewClient(dial func(ctx context.Context, nodeID int32) (net.Conn, error), leader func() int32, cfg ClientConfig) *Client {
	cfg = cfg.withDefaults()
	return &Client{dial: dial, leader: leader, cfg: cfg, log: cfg.Logger, idle: map[int32][]net.Conn{}}
}

// Close closes idle connections; later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, conns := range c.idle {
		for _, conn := range conns {
			_ = conn.Close()
		}
	}
	clear(c.idle)
	return nil
}

// Register registers this broker and returns its new broker epoch.
func (c *Client) Register(ctx context.Context, reg Registration) (int64, error) {
	resp, err := c.call(ctx, &request{kind: kindRegister, register: reg})
	if err != nil {
		return 0, err
	}
	return resp.epoch, nil
}

// Heartbeat sends a heartbeat. A STALE_BROKER_EPOCH or
// BROKER_ID_NOT_REGISTERED answer returns the reply (ErrorCode set,
// Fenced) together with an *Error: the broker must register again.
func (c *Client) Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatReply, error) {
	resp, err := c.call(ctx, &request{kind: kindHeartbeat, heartbeat: hb})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && resp != nil {
			return resp.heartbeat, err
		}
		return HeartbeatReply{}, err
	}
	return resp.heartbeat, nil
}

// ReplicasOffline reports replicas of this broker whose logs failed (a disk
// error): the controller moves their leadership away and takes them out of
// ISRs, and keeps them from leading until the broker registers again. It
// returns once the moves are committed.
func (c *Client) ReplicasOffline(ctx context.Context, nodeID int32, brokerEpoch int64, parts []PartitionRef) error {
	_, err := c.call(ctx, &request{kind: kindReplicasOffline, nodeID: nodeID, epoch: brokerEpoch, offline: parts})
	return err
}

// ControlledShutdown asks the controller to move leadership away from this
// broker; it returns once the moves are committed.
func (c *Client) ControlledShutdown(ctx context.Context, nodeID int32, brokerEpoch int64) error {
	_, err := c.call(ctx, &request{kind: kindControlledShutdown, nodeID: nodeID, epoch: brokerEpoch})
	return err
}

// Propose forwards an admin command (CreateTopic, DeleteTopic,
// CreatePartitions, AllocateProducerIDs) to the controller and returns the
// index it was committed at; wait for it with the local node's
// WaitApplied. A command the state machine rejected returns its index and
// an *Error matching meta's sentinel (errors.Is). RegisterBroker,
// FenceBroker, UnfenceBroker and ChangePartition are refused
// (ErrForbiddenCommand); an AlterPartition is accepted but its rejected
// items are only reported by AlterPartition.
func (c *Client) Propose(ctx context.Context, cmd meta.Command) (uint64, error) {
	idx, _, _, err := c.propose(ctx, cmd)
	return idx, err
}

// AlterPartition proposes a partition leader's ISR changes; cmd.ProposerID
// must be the node id this client dials as (ErrPeerMismatch otherwise). It
// returns the index the command was committed at and the items that were
// not applied, each with an *Error matching meta's sentinels (errors.Is:
// meta.ErrStaleEpoch, meta.ErrIneligibleReplica, ...); every other item
// holds in the image at that index. The controller refuses to add a broker
// in controlled shutdown or without a live session (KIP-841,
// meta.ErrIneligibleReplica). A stale, unknown or fenced proposer fails
// the whole command with an *Error and no items. A call retried after a
// lost answer may commit twice; the second commit's items then come back
// stale or change nothing, so the image at the index is the truth.
func (c *Client) AlterPartition(ctx context.Context, cmd meta.AlterPartition) (uint64, []meta.PartitionRejection, error) {
	idx, _, rejected, err := c.propose(ctx, cmd)
	if err != nil {
		return idx, nil, err
	}
	return idx, rejected, nil
}

// AllocateProducerIDs forwards meta.AllocateProducerIDs and returns the
// block handed out and the index it was committed at.
func (c *Client) AllocateProducerIDs(ctx context.Context, nodeID int32, brokerEpoch int64) (meta.ProducerIDBlock, uint64, error) {
	idx, block, _, err := c.propose(ctx, meta.AllocateProducerIDs{NodeID: nodeID, BrokerEpoch: brokerEpoch})
	if err != nil {
		return meta.ProducerIDBlock{}, idx, err
	}
	if block == nil {
		return meta.ProducerIDBlock{}, idx, fmt.Errorf("%w: no producer id block in the answer", ErrMalformed)
	}
	return *block, idx, nil
}

func (c *Client) propose(ctx context.Context, cmd meta.Command) (uint64, *meta.ProducerIDBlock, []meta.PartitionRejection, error) {
	resp, err := c.call(ctx, &request{kind: kindPropose, command: meta.EncodeCommand(cmd)})
	if resp == nil {
		return 0, nil, nil, err
	}
	return resp.index, resp.producerIDs, resp.rejected, err
}

// ReplaceVoter replaces raft voter dead by replacement, a learner that has
// caught up (ErrNotCaughtUp otherwise).
func (c *Client) ReplaceVoter(ctx context.Context, dead, replacement int32) error {
	_, err := c.call(ctx, &request{kind: kindReplaceVoter, dead: dead, new: replacement})
	return err
}

// Status returns the controller's view of the quorum.
func (c *Client) Status(ctx context.Context) (Status, error) {
	resp, err := c.call(ctx, &request{kind: kindStatus})
	if err != nil {
		return Status{}, err
	}
	return resp.status, nil
}

// call sends req to the controller until it answers something other than
// NOT_CONTROLLER. A non-zero code returns the response and an *Error.
func (c *Client) call(ctx context.Context, req *request) (*response, error) {
	frame := encodeRequest(req)
	backoff := c.cfg.RetryBackoffMin
	var last error
	redirects := 0
	for {
		target := c.target()
		if target != 0 {
			resp, err := c.roundTrip(ctx, target, frame)
			switch {
			case err != nil:
				last = err
				c.setHint(target, 0)
				c.log.Debug("controller call failed", "request", req.kind, "node", target, "err", err)
			case resp.kind != req.kind:
				last = fmt.Errorf("%w: %v answered with %v", ErrMalformed, req.kind, resp.kind)
			case resp.code == wire.CodeNotController:
				last = &Error{Code: resp.code, Message: resp.message}
				c.setHint(target, resp.leader)
				if resp.leader != 0 && resp.leader != target && redirects < 3 {
					redirects++
					continue // redirect at once
				}
			case resp.code != wire.CodeNone:
				return resp, &Error{Code: resp.code, Message: resp.message}
			default:
				return resp, nil
			}
		} else {
			last = ErrNotController
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("controller: %v: %w (last attempt: %v)", req.kind, ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
		redirects = 0
	}
}

// target picks the node to call: the last redirect, else the raft leader.
func (c *Client) target() int32 {
	c.mu.Lock()
	h := c.hint
	c.mu.Unlock()
	if h != 0 {
		return h
	}
	return c.leader()
}

// setHint records where a NOT_CONTROLLER answer from node from pointed.
// A redirect to the same node, or none, falls back to the raft view.
func (c *Client) setHint(from, to int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if to == from {
		to = 0
	}
	if c.hint == from || c.hint == 0 {
		c.hint = to
	}
}

// roundTrip sends one request frame to node and reads the answer.
func (c *Client) roundTrip(ctx context.Context, node int32, frame []byte) (*response, error) {
	conn, err := c.conn(ctx, node)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	resp, err := c.exchange(conn, deadline, frame)
	if !stop() || err != nil {
		_ = conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = conn.Close()
		return resp, nil
	}
	c.release(node, conn)
	return resp, nil
}

func (c *Client) exchange(conn net.Conn, deadline time.Time, frame []byte) (*response, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := conn.Write(frame); err != nil {
		return nil, fmt.Errorf("controller: write: %w", err)
	}
	body, err := readFrame(conn, c.cfg.MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("controller: read: %w", err)
	}
	return decodeResponse(body)
}

func (c *Client) conn(ctx context.Context, node int32) (net.Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if conns := c.idle[node]; len(conns) > 0 {
		conn := conns[len(conns)-1]
		c.idle[node] = conns[:len(conns)-1]
		c.mu.Unlock()
		return conn, nil
	}
	c.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	conn, err := c.dial(dctx, node)
	if err != nil {
		return nil, fmt.Errorf("controller: dial node %d: %w", node, err)
	}
	return conn, nil
}

func (c *Client) release(node int32, conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.idle[node]) >= c.cfg.MaxIdleConns {
		_ = conn.Close()
		return
	}
	c.idle[node] = append(c.idle[node], conn)
}
