package node

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/fetch"
	"github.com/sluice-io/sluice/wire"
)

// conn is one client connection. Two goroutines own it:
//
//   - the reader reads request frames ahead of the handler: at most MaxInFlightRequests frames and
//     MaxInFlightBytes bytes are queued, and a frame's size is checked (and its bytes reserved)
//     before its body is allocated;
//   - the handler (serve) answers the queued requests one at a time, in order, as Kafka does, and is
//     the only writer to the socket.
//
// Closing: the handler closes the socket when it stops; the reader stops on any read error. Shutdown
// stops the reader with a read deadline, so requests already read are still answered.
type conn struct {
	n      *Node
	nc     net.Conn     // *net.TCPConn or *tls.Conn
	tcp    *net.TCPConn // the raw socket (sendfile on plaintext)
	ln     *listener
	lg     *slog.Logger
	frames chan frame
	budget byteBudget
	done   chan struct{} // closed when the handler stops

	readerGone chan struct{} // closed when the reader stops (client gone or shutdown)

	// replica is the broker the internal link authenticated, on a replica-fetch connection; -1 on
	// client listeners.
	replica int32
	// session is the replica fetcher's incremental fetch session (handler-owned; fetch_session.go).
	session       *fetchSession
	nextSessionID int32

	// Handler-owned scratch, reused across requests.
	wbuf        []byte // response encoding buffer
	pieces      []wire.Piece
	scratch     []byte
	fetchWaiter *fetch.Waiter
}

func (n *Node) newConn(nc net.Conn, l *listener) *conn {
	c := &conn{
		n:      n,
		nc:     nc,
		ln:     l,
		lg:     n.lg.With("listener", l.name, "remote", nc.RemoteAddr().String()),
		frames: make(chan frame, n.cfg.MaxInFlightRequests),
		done:   make(chan struct{}),

		readerGone: make(chan struct{}),
		replica:    -1,
	}
	c.budget.avail = n.cfg.MaxInFlightBytes
	c.tcp, _ = nc.(*net.TCPConn)
	if l.tls {
		c.nc = tls.Server(nc, n.tlsConf)
	}
	return c
}

// stopReading makes the reader stop at its next read (shutdown); queued requests are still answered.
func (c *conn) stopReading() { _ = c.nc.SetReadDeadline(time.Now()) }

func (c *conn) serve() {
	m := c.n.metrics
	m.connsAccepted.WithLabelValues(c.ln.name).Inc()
	g := m.connections.WithLabelValues(c.ln.name)
	g.Inc()
	defer g.Dec()

	reason := "eof"
	defer func() {
		m.connsClosed.WithLabelValues(reason).Inc()
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(c.n.cfg.WriteTimeout))
		if err := tc.Handshake(); err != nil {
			c.lg.Debug("tls handshake", "err", err)
			reason = "tls"
			c.nc.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		// Shutdown may have stopped the reader during the handshake; clearing the deadline above
		// must not undo that.
		select {
		case <-c.n.stopping:
			c.stopReading()
		default:
		}
	}

	readerDone := make(chan string, 1)
	go func() { readerDone <- c.readLoop() }()

	for f := range c.frames {
		keep, why := c.handle(f.b)
		c.release(int64(len(f.b)) + 4)
		// Nothing keeps a reference to the frame after its request was answered (kmsg copies
		// strings; produced records were appended to the log), so its buffer can be reused.
		c.n.frames.put(f.pooled)
		if !keep {
			reason = why
			break
		}
	}
	close(c.done)
	c.nc.Close()
	r := <-readerDone
	if reason == "eof" {
		reason = r
	}
}

// readLoop reads frames into c.frames until an error, then closes c.frames. It returns the close
// reason for metrics.
func (c *conn) readLoop() (reason string) {
	defer close(c.frames)
	defer close(c.readerGone)
	br := bufio.NewReaderSize(c.nc, 16<<10)
	maxFrame := c.n.cfg.MaxFrameBytes
	for {
		hdr, err := br.Peek(4)
		if err != nil {
			if len(hdr) > 0 {
				c.lg.Debug("truncated frame size", "err", err)
				return "bad_frame"
			}
			return readReason(err)
		}
		size := int32(binary.BigEndian.Uint32(hdr))
		if size < 0 || size > maxFrame {
			// Refuse before allocating anything.
			c.lg.Debug("bad frame size", "size", size, "max", maxFrame)
			return "bad_frame"
		}
		if size >= 2 && size > c.n.cfg.MaxNonProduceFrameBytes {
			// Only Produce carries bulk data; look at the API key before reading the body.
			kb, err := br.Peek(6)
			if err != nil {
				c.lg.Debug("truncated frame header", "err", err)
				return "bad_frame"
			}
			if key := int16(binary.BigEndian.Uint16(kb[4:])); key != wire.KeyProduce {
				c.lg.Debug("oversized non-produce frame", "size", size, "api_key", key, "max", c.n.cfg.MaxNonProduceFrameBytes)
				return "bad_frame"
			}
		}
		cost := int64(size) + 4
		if !c.acquire(cost) {
			return "eof"
		}
		pooled := c.n.frames.get(int(size))
		var buf []byte
		if pooled != nil {
			buf = *pooled
		}
		b, err := wire.ReadFrame(br, maxFrame, buf)
		if err != nil {
			c.n.frames.put(pooled)
			c.release(cost)
			c.lg.Debug("read frame", "err", err)
			if errors.Is(err, wire.ErrTruncatedFrame) {
				return "bad_frame"
			}
			return readReason(err)
		}
		c.n.metrics.bytesIn.Add(float64(cost))
		select {
		case c.frames <- frame{b: b, pooled: pooled}:
		case <-c.done:
			c.n.frames.put(pooled)
			c.release(cost)
			return "eof"
		}
	}
}

func readReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "eof"
	case errors.As(err, &ne) && ne.Timeout():
		return "shutdown"
	}
	return "io"
}

// handle answers one request frame. It returns false (and a reason) when the connection must close.
func (c *conn) handle(frame []byte) (keep bool, reason string) {
	req, err := c.n.versions.ParseRequest(frame)
	if err != nil {
		var uv *wire.UnsupportedVersionError
		switch {
		case errors.As(err, &uv) && uv.Header.Key == wire.KeyApiVersions:
			// Kafka answers an ApiVersions it cannot parse with a v0 error listing what it supports,
			// so the client can retry with a version both know.
			c.n.metrics.api(wire.KeyApiVersions).requests.Inc()
			return c.write(c.n.versions.APIVersionsError(uv.Header))
		case errors.As(err, &uv):
			c.lg.Debug("unsupported version", "err", err)
			return false, "unsupported_version"
		case errors.Is(err, wire.ErrUnknownAPI):
			c.lg.Debug("unknown api", "err", err)
			return false, "unknown_api"
		default:
			c.lg.Debug("malformed request", "err", err)
			return false, "malformed"
		}
	}
	am := c.n.metrics.api(req.Key)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			// Last line of defence: a handler bug must not take down the broker.
			c.n.metrics.panics.Inc()
			c.lg.Error("request handler panic", "api", apiName(req.Key), "version", req.Version,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			keep, reason = false, "panic"
		}
	}()
	am.requests.Inc()
	keep, reason = c.dispatch(req)
	am.duration.Observe(time.Since(start).Seconds())
	return keep, reason
}

// respond encodes and writes a kmsg response for req.
func (c *conn) respond(req wire.Request, resp kmsg.Response) (bool, string) {
	c.wbuf = wire.AppendResponse(c.wbuf[:0], req.Header, resp)
	keep, reason := c.write(c.wbuf)
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // do not pin a huge buffer per idle connection
	}
	return keep, reason
}

func (c *conn) write(b []byte) (bool, string) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.n.cfg.WriteTimeout))
	n, err := c.nc.Write(b)
	c.n.metrics.bytesOut.Add(float64(n))
	if err != nil {
		c.lg.Debug("write response", "err", err)
		return false, "io"
	}
	return true, ""
}

// countErr records a Kafka error code returned by api.
func (c *conn) countErr(api int16, code int16) {
	if code != wire.CodeNone {
		c.n.metrics.requestErrors.WithLabelValues(apiName(api), codeLabel(code)).Inc()
	}
}

// frame is one request frame (size prefix stripped) and the pooled buffer backing it, if any.
type frame struct {
	b      []byte
	pooled *[]byte
}

// framePool recycles request frame buffers in power-of-two size classes from 1 KiB to 1 MiB; larger
// frames are allocated and left to the garbage collector. Safe for concurrent use.
type framePool struct {
	classes [11]sync.Pool // class i holds buffers of capacity 1 KiB << i
}

func frameClass(size int) int {
	c := 0
	for (1<<10)<<c < size {
		c++
	}
	return c
}

// get returns a buffer with capacity >= size, or nil for frames above the largest class.
func (p *framePool) get(size int) *[]byte {
	c := frameClass(size)
	if c >= len(p.classes) {
		return nil
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, (1<<10)<<c)
	return &b
}

func (p *framePool) put(b *[]byte) {
	if b == nil {
		return
	}
	c := frameClass(cap(*b))
	if c < len(p.classes) && (1<<10)<<c == cap(*b) {
		p.classes[c].Put(b)
	}
}

// acquire reserves cost bytes of read-ahead on this connection and in the node-wide request queue.
func (c *conn) acquire(cost int64) bool {
	if !c.budget.acquire(cost, c.done) {
		return false
	}
	if !c.n.queued.acquire(cost, c.done) {
		c.budget.release(cost)
		return false
	}
	return true
}

func (c *conn) release(cost int64) {
	c.n.queued.release(cost)
	c.budget.release(cost)
}

// byteBudget bounds the bytes of read-ahead frames of one connection. A request larger than the whole
// budget is admitted when nothing else is outstanding (avail is then allowed to go negative), so any
// frame up to MaxFrameBytes can be read.
type byteBudget struct {
	mu      sync.Mutex
	avail   int64
	total   int64 // outstanding bytes
	changed chan struct{}
}

func (b *byteBudget) acquire(n int64, done <-chan struct{}) bool {
	for {
		b.mu.Lock()
		if n <= b.avail || b.total == 0 {
			b.avail -= n
			b.total += n
			b.mu.Unlock()
			return true
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	b.total -= n
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	b.mu.Unlock()
}
