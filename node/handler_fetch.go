package node

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/fetch"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/wire"
)

// fetchTarget is one requested partition, resolved once per request.
type fetchTarget struct {
	p         *partition.Replica // nil when err != nil
	err       error
	offset    int64
	lastEpoch int32 // the follower's LastFetchedEpoch (v12+; -1 otherwise)
	curEpoch  int32 // the fetch's CurrentLeaderEpoch (v9+; -1 otherwise)
	maxBytes  int32
	out       *wire.FetchPartition
}

// fetcherID is who sent a Fetch: a consumer (replica -1) or a follower replica with its broker epoch.
type fetcherID struct {
	replica     int32
	brokerEpoch int64
}

// replicaOf returns the request's replica id and broker epoch (v15+ ReplicaState, else ReplicaID).
func replicaOf(version int16, m *kmsg.FetchRequest) fetcherID {
	if version >= 15 {
		return fetcherID{replica: m.ReplicaState.ID, brokerEpoch: m.ReplicaState.Epoch}
	}
	return fetcherID{replica: m.ReplicaID, brokerEpoch: -1}
}

// handleFetch answers a Fetch: sessionless (SessionId 0, every requested partition, every time),
// long-polling on the partitions' signals until MinBytes are available, MaxWait passes, the node
// shuts down or the client goes away. The records are file ranges frozen (and pinned) before the
// frame is sized, and written with sendfile on the plaintext listener or copied on TLS.
func (c *conn) handleFetch(req wire.Request, m *kmsg.FetchRequest) (bool, string) {
	resp := &wire.FetchResponse{Version: req.Version, CorrelationID: req.CorrelationID}
	inSession, incremental := false, false
	if c.replica >= 0 && m.SessionEpoch >= 0 {
		// A follower's session on the internal link (fetch_session.go): m becomes the full request
		// the session stands for.
		full, code := c.sessionRequest(m)
		if code != wire.CodeNone {
			resp.ErrorCode = code
			c.countErr(req.Key, code)
			return c.writeFetch(resp, nil, 0)
		}
		inSession, incremental, m = true, m.SessionEpoch > 0, full
	} else if c.replica >= 0 {
		c.session = nil // sessionless, or the follower closed its session (FINAL epoch)
	}
	if !inSession && m.SessionID != 0 && m.SessionEpoch > 0 {
		// An incremental fetch in a session this broker never created (KAFKA-WIRE.md §2).
		resp.ErrorCode = wire.CodeFetchSessionIDNotFound
		c.countErr(req.Key, resp.ErrorCode)
		return c.writeFetch(resp, nil, 0)
	}
	who := replicaOf(req.Version, m)
	targets := c.resolveFetch(req, m, resp)
	if who.replica >= 0 || c.replica >= 0 {
		// Replica fetches come only over the internal link, from the broker the handshake
		// authenticated; a client claiming a replica id (or a consumer fetch on the internal link)
		// is refused, as Kafka refuses a follower fetch without cluster authorization.
		if c.replica < 0 || who.replica != c.replica {
			c.lg.Warn("fetch refused: replica id does not match the connection", "replica_id", who.replica,
				"authenticated_peer", c.replica)
			for i := range targets {
				targets[i].err, targets[i].p = ErrReplicaNotAuthorized, nil
			}
		}
	}

	var (
		views    []*segment.View
		total    int64
		answer   bool
		deadline = time.Now().Add(time.Duration(max(m.MaxWaitMillis, 0)) * time.Millisecond)
		w        *fetch.Waiter
		timer    *time.Timer
	)
readLoop:
	for final := false; ; {
		canWait := !final && m.MaxWaitMillis > 0 && m.MinBytes > 0
		if canWait && w == nil {
			// Register once, before the first read, so an append between a read and the wait is
			// not missed; after a wake-up Rearm re-registers only the partitions that fired.
			w = c.waiter()
			for _, t := range targets {
				if t.p != nil {
					w.Add(t.p.Signal())
				}
			}
		}
		views, total, answer = c.readFetch(targets, who, m.MaxBytes, views[:0])
		if !canWait || answer || total >= int64(m.MinBytes) || !time.Now().Before(deadline) {
			break
		}
		releaseViews(views)
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
			defer timer.Stop()
		}
		c.n.metrics.fetchWaiting.Inc()
		select {
		case <-w.C():
			c.n.metrics.fetchWakeups.Inc()
			w.Rearm()
		case <-timer.C:
			final = true
			if total == 0 && !fired(w) {
				// Nothing was notified since the last read: its answer (no records, the same high
				// watermarks) still stands, so an idle long-poll ends without reading every
				// partition again.
				c.n.metrics.fetchWaiting.Dec()
				break readLoop
			}
		case <-c.n.stopping:
			final = true
		case <-c.readerGone:
			final = true
		}
		c.n.metrics.fetchWaiting.Dec()
	}
	if w != nil {
		w.Stop()
	}
	for _, t := range targets {
		if t.out.ErrorCode != wire.CodeNone {
			c.countErr(req.Key, t.out.ErrorCode)
		}
	}
	if inSession {
		c.trimSessionResponse(resp, incremental)
	}
	return c.writeFetch(resp, views, total)
}

// fired reports (consuming it) whether a wake-up is pending on w.
func fired(w *fetch.Waiter) bool {
	select {
	case <-w.C():
		return true
	default:
		return false
	}
}

// waiter returns the connection's reusable multi-signal waiter.
func (c *conn) waiter() *fetch.Waiter {
	if c.fetchWaiter == nil {
		c.fetchWaiter = fetch.NewWaiter()
	}
	return c.fetchWaiter
}

// resolveFetch builds the response skeleton (one entry per requested partition, in request order) and
// resolves each partition.
func (c *conn) resolveFetch(req wire.Request, m *kmsg.FetchRequest, resp *wire.FetchResponse) []fetchTarget {
	reg := c.n.registry()
	byID := req.Version >= 13
	n := 0
	for _, rt := range m.Topics {
		n += len(rt.Partitions)
	}
	targets := make([]fetchTarget, 0, n)
	resp.Topics = make([]wire.FetchTopic, len(m.Topics))
	for ti, rt := range m.Topics {
		ft := &resp.Topics[ti]
		ft.Topic, ft.TopicID = rt.Topic, rt.TopicID
		var t *topic
		var terr error
		if byID {
			if t = reg.getByID(rt.TopicID); t == nil {
				terr = fmt.Errorf("%w: %x", ErrUnknownTopicID, rt.TopicID)
			}
		} else if t = reg.get(rt.Topic); t == nil {
			terr = fmt.Errorf("%w: %q", ErrUnknownTopic, rt.Topic)
		}
		ft.Partitions = make([]wire.FetchPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			ft.Partitions[pi] = wire.NewFetchPartition(rp.Partition)
			tg := fetchTarget{err: terr, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
				lastEpoch: -1, curEpoch: -1, out: &ft.Partitions[pi]}
			if req.Version >= 12 {
				tg.lastEpoch = rp.LastFetchedEpoch
			}
			if terr == nil {
				if req.Version >= 9 {
					tg.curEpoch = rp.CurrentLeaderEpoch
				}
				tg.p, tg.err = t.leaderFor(rp.Partition, tg.curEpoch)
			}
			if tg.err != nil {
				tg.p = nil
			}
			targets = append(targets, tg)
		}
	}
	return targets
}

// readFetch fills every target's response entry with the current offsets and the file ranges to
// send, pinning them as views (appended to views). Limits follow KIP-74: partition and response
// MaxBytes bound the data, except that the first batch of the response is sent whole. Consumers read
// below the high watermark; a follower's fetch is applied to the partition's replication core
// (its fetch offset is its acknowledgement) and reads up to the log end, or gets a diverging epoch
// and no records. answer reports a partition that must be answered at once (an error, a divergence).
func (c *conn) readFetch(targets []fetchTarget, who fetcherID, maxBytes int32, views []*segment.View) ([]*segment.View, int64, bool) {
	var total int64
	answer := false
	remaining := int64(max(maxBytes, 0))
	now := time.Now()
	for i := range targets {
		t := &targets[i]
		out := t.out
		*out = wire.NewFetchPartition(out.Partition)
		if t.err != nil {
			out.ErrorCode = codeFor(t.err)
			answer = true
			continue
		}
		upper := t.p.HighWatermark()
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = upper, upper, t.p.Log().LogStartOffset()
		if who.replica >= 0 {
			d, err := t.p.FollowerFetch(now, who.replica, who.brokerEpoch, t.offset, t.lastEpoch, t.curEpoch)
			out.HighWatermark, out.LastStableOffset, out.LogStartOffset = d.HighWatermark, d.HighWatermark, d.LogStart
			if err != nil {
				out.ErrorCode = codeFor(err)
				answer = true
				continue
			}
			if d.Diverging != nil {
				out.DivergingEpoch = &wire.EpochEndOffset{Epoch: d.Diverging.Epoch, EndOffset: d.Diverging.EndOffset}
				answer = true
				continue
			}
			upper = d.Upper
		}
		limit := min(int64(max(t.maxBytes, 0)), remaining)
		if (total > 0 && limit <= 0) || (t.offset == upper && t.offset >= t.p.Log().LogStartOffset()) {
			continue // over the limits, or nothing to read yet (an idle partition costs no View)
		}
		v, err := t.p.Log().Read(t.offset, int(limit), upper)
		if err != nil {
			out.ErrorCode = codeFor(err)
			answer = true
			continue
		}
		n := v.Len()
		if n == 0 || (total > 0 && n > limit) {
			// Only the response's first batch may exceed the limits.
			v.Release()
			continue
		}
		out.Records = make([]wire.FileRange, len(v.Ranges))
		for j, r := range v.Ranges {
			out.Records[j] = wire.FileRange{File: r.File, Pos: r.Pos, Len: r.Len}
		}
		views = append(views, v)
		total += n
		remaining -= n
	}
	return views, total, answer
}

func releaseViews(views []*segment.View) {
	for _, v := range views {
		v.Release()
	}
}

// writeFetch encodes resp into pieces and writes them: sendfile on the plaintext listener, a
// buffered copy on TLS (or on plaintext with DisableSendfile). The views are released after the
// write. recordBytes is the records' share of the frame (for sluice_fetch_bytes_total).
func (c *conn) writeFetch(resp *wire.FetchResponse, views []*segment.View, recordBytes int64) (bool, string) {
	defer releaseViews(views)
	if err := resp.Validate(); err != nil {
		c.lg.Error("fetch response cannot be encoded", "err", err)
		return false, "io"
	}
	var frameBytes int64
	c.pieces, c.scratch, frameBytes = resp.AppendPieces(c.pieces[:0], c.scratch)
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.n.cfg.WriteTimeout))
	var (
		n    int64
		err  error
		path string
	)
	switch {
	case c.ln.tls:
		path = pathTLS
		n, err = c.n.copier.WriteBuffered(c.nc, c.pieces)
	case c.n.cfg.DisableSendfile || c.tcp == nil:
		path = pathCopy
		n, err = c.n.copier.WriteBuffered(c.nc, c.pieces)
	default:
		path = pathSendfile
		n, err = fetch.WriteSendfile(c.tcp, c.pieces)
	}
	clear(c.pieces) // drop file references
	if cap(c.scratch) > 1<<20 {
		c.scratch = nil
	}
	c.n.metrics.bytesOut.Add(float64(n))
	if err != nil || n != frameBytes {
		c.lg.Debug("write fetch response", "path", path, "written", n, "frame", frameBytes, "err", err)
		return false, "io"
	}
	c.n.metrics.fetchPath[path].Add(float64(recordBytes))
	if c.replica >= 0 {
		c.n.metrics.replicaBytesOut[path].Add(float64(recordBytes))
	}
	return true, ""
}
