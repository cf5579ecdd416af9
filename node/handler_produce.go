package node

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/wire"
)

// handleProduce appends each partition's batch, then (acks=all) waits for the high watermark to pass
// every appended batch, and builds the response. failed reports whether any partition failed (with
// acks=0 the caller then closes the connection, as Kafka does).
//
// Checks (KAFKA-WIRE.md §4), in order, per partition:
//   - request version < 3 -> UNSUPPORTED_VERSION; acks not in {0,1,-1} -> INVALID_REQUIRED_ACKS;
//   - unknown topic/partition -> UNKNOWN_TOPIC_OR_PARTITION (the topic is auto-created when enabled);
//   - records missing, or more than one batch -> INVALID_RECORD;
//   - segment.ValidateBatch: bad length/CRC -> CORRUPT_MESSAGE, magic != 2, count or
//     lastOffsetDelta wrong -> INVALID_RECORD, over max.message.bytes -> MESSAGE_TOO_LARGE,
//     codec 5-7 -> UNSUPPORTED_COMPRESSION_TYPE;
//   - baseOffset != 0, control batch, transactional batch (unsupported), idempotent batch with a
//     negative sequence -> INVALID_RECORD; zstd below Produce v7 -> UNSUPPORTED_COMPRESSION_TYPE;
//   - acks=-1 with fewer in-sync replicas than min.insync.replicas -> NOT_ENOUGH_REPLICAS (nothing
//     is appended);
//   - producer state: stale epoch -> INVALID_PRODUCER_EPOCH, gap -> OUT_OF_ORDER_SEQUENCE_NUMBER,
//     duplicate -> success with the original base offset (once it is committed, like the original).
//
// acks=all then waits, with the request's timeout, until the HW passes the batch: success, or
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR was smaller than min.insync.replicas by then,
// REQUEST_TIMED_OUT past the timeout, NOT_LEADER_OR_FOLLOWER when this broker stopped leading.
// acks=1 answers after the local append (durable under the topic's durability policy) and is
// refused when the leader lease ran out during the append; an acks=all write that the HW passed is
// committed (every ISR member has it) and is never refused afterwards.
func (c *conn) handleProduce(req wire.Request, m *kmsg.ProduceRequest) (resp *kmsg.ProduceResponse, failed bool) {
	resp = m.ResponseKind().(*kmsg.ProduceResponse)
	var whole int16 // a code that applies to every partition
	switch {
	case m.Version < wire.ProduceMinServedVersion:
		whole = wire.CodeUnsupportedVersion
	case m.Acks != 0 && m.Acks != 1 && m.Acks != -1:
		whole = wire.CodeInvalidRequiredAcks
	}
	reg := c.n.registry()
	var waits []ackWait
	for _, rt := range m.Topics {
		tr := kmsg.NewProduceResponseTopic()
		tr.Topic = rt.Topic
		var t *topic
		var terr error
		if whole == wire.CodeNone {
			if t = reg.get(rt.Topic); t == nil {
				terr = validateTopicName(rt.Topic)
				if terr == nil {
					terr = fmt.Errorf("%w: %q", ErrUnknownTopic, rt.Topic)
					if c.n.cfg.AutoCreateTopics {
						t, terr = c.n.autoCreate(rt.Topic)
					}
				}
			}
		}
		for _, rp := range rt.Partitions {
			pr := kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.BaseOffset, pr.LogAppendTime, pr.LogStartOffset = -1, -1, -1
			var err error
			if whole == wire.CodeNone {
				if terr != nil {
					err = terr
				} else if p, perr := c.n.leaderForProduce(t, rp.Partition); perr != nil {
					err = perr
				} else {
					var res partition.ProduceResult
					res, err = c.produceOne(p, t, rp.Records, m.Version, m.Acks)
					if err == nil {
						pr.BaseOffset, pr.LogStartOffset = res.BaseOffset, res.LogStartOffset
						if m.Acks == -1 {
							id, ch := p.AddWait(res.End, t.minInsync())
							waits = append(waits, ackWait{topic: len(resp.Topics), part: len(tr.Partitions), p: p, id: id, ch: ch})
						}
					}
				}
			}
			c.setProduceError(req, &pr, whole, err)
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	c.awaitAcks(req, resp, m.TimeoutMillis, waits)
	for _, tr := range resp.Topics {
		for _, pr := range tr.Partitions {
			if pr.ErrorCode != wire.CodeNone {
				failed = true
			}
		}
	}
	return resp, failed
}

// ackWait is an acks=all partition waiting for the high watermark.
type ackWait struct {
	topic, part int // index in the response
	p           *partition.Replica
	id          uint64
	ch          <-chan error
}

// awaitAcks waits for every acks=all partition of a request together, bounded by the request's
// timeout (and the node's shutdown).
func (c *conn) awaitAcks(req wire.Request, resp *kmsg.ProduceResponse, timeoutMillis int32, waits []ackWait) {
	if len(waits) == 0 {
		return
	}
	timer := time.NewTimer(time.Duration(max(timeoutMillis, 0)) * time.Millisecond)
	defer timer.Stop()
	expired := false
	for _, w := range waits {
		pr := &resp.Topics[w.topic].Partitions[w.part]
		var err error
		if expired {
			select {
			case err = <-w.ch:
			default:
				err = ErrRequestTimedOut
			}
		} else {
			select {
			case err = <-w.ch:
			case <-timer.C:
				expired = true
				err = ErrRequestTimedOut
			case <-c.n.stopping:
				expired = true
				err = fmt.Errorf("%w: shutting down", ErrNotLeader)
			}
		}
		if err != nil {
			w.p.CancelWait(w.id)
			pr.BaseOffset, pr.LogStartOffset = -1, -1
			c.setProduceError(req, pr, wire.CodeNone, err)
		}
	}
}

// setProduceError records whole (if set) or err's code on a partition response.
func (c *conn) setProduceError(req wire.Request, pr *kmsg.ProduceResponseTopicPartition, whole int16, err error) {
	code := whole
	if code == wire.CodeNone {
		code = codeFor(err)
	}
	if code == wire.CodeNone {
		return
	}
	pr.ErrorCode = code
	c.countErr(req.Key, code)
	if err != nil {
		msg := err.Error()
		pr.ErrorMessage = &msg
		if code == wire.CodeUnknownServerError {
			c.lg.Warn("produce", "partition", pr.Partition, "err", err)
		}
	}
}

// produceOne validates and appends one partition's records. For acks=1 and acks=0 it also checks
// that the leader lease did not run out during the append.
func (c *conn) produceOne(p *partition.Replica, t *topic, records []byte, version, acks int16) (partition.ProduceResult, error) {
	if len(records) == 0 {
		return partition.ProduceResult{}, ErrNoRecords
	}
	// Exactly one batch: a declared length shorter than the buffer means more batches (or junk)
	// follow. A longer one is a truncated batch, which ValidateBatch reports as corrupt.
	if h, err := segment.ParseHeader(records); err == nil {
		if size := h.Size(); size >= segment.HeaderSize && size < len(records) {
			return partition.ProduceResult{}, fmt.Errorf("%w: first batch is %d of %d bytes", ErrMultipleBatches, size, len(records))
		}
	}
	checked, err := segment.Check(records, t.cfg.log.MaxBatchBytes)
	if err != nil {
		return partition.ProduceResult{}, err
	}
	h := checked.Header()
	switch {
	case h.BaseOffset != 0:
		return partition.ProduceResult{}, fmt.Errorf("%w: %d", ErrBaseOffsetNonZero, h.BaseOffset)
	case h.Control():
		return partition.ProduceResult{}, ErrControlBatch
	case h.Transactional():
		return partition.ProduceResult{}, ErrTransactional
	case h.Codec() == segment.CodecZstd && version < 7:
		return partition.ProduceResult{}, fmt.Errorf("%w: produce v%d", ErrCompressionVersion, version)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return partition.ProduceResult{}, fmt.Errorf("%w: producer %d sequence %d", ErrNegativeSequence, h.ProducerID, h.BaseSequence)
	}
	if acks == -1 {
		if err := p.CheckMinISR(t.minInsync()); err != nil {
			return partition.ProduceResult{}, err
		}
	}
	res, err := p.Produce(checked)
	if err != nil {
		return res, err
	}
	if acks != -1 {
		if res.Duplicate {
			// The original may still wait for its fdatasync; answer the retry like it.
			if err := p.WaitDurable(res.End, c.n.cfg.WriteTimeout); err != nil {
				return partition.ProduceResult{}, err
			}
		}
		if !c.n.leaseValid() {
			// The lease ran out during the append (a long fsync, a pause): the controller may have
			// moved the partition, so this write is not acknowledged. It stays in this replica's
			// log only, like an unanswered write to any leader that fails.
			return partition.ProduceResult{}, fmt.Errorf("%w: %s-%d: the controller lease ran out during the append", ErrNotLeader, p.Topic(), p.Index())
		}
	}
	if !res.Duplicate {
		m := c.n.metrics
		m.produceBytes.Add(float64(len(records)))
		m.produceRecords.Add(float64(h.NumRecords))
		m.produceBatches.Inc()
	}
	return res, nil
}

// leaderForProduce returns the local leader replica of a partition, refusing when this broker may
// not lead (fenced, or a zombie whose heartbeats fail) whatever its image says.
func (n *Node) leaderForProduce(t *topic, i int32) (*partition.Replica, error) {
	p, err := t.leaderFor(i, -1)
	if err != nil {
		return nil, err
	}
	if n.hbFenced.Load() {
		return nil, fmt.Errorf("%w: %s-%d: this broker is fenced", ErrNotLeader, t.name, i)
	}
	if !n.leaseValid() {
		// No heartbeat acknowledged within the session: the controller may already have moved
		// this partition (a broker frozen or cut off and now back, a zombie).
		return nil, fmt.Errorf("%w: %s-%d: this broker's controller lease expired", ErrNotLeader, t.name, i)
	}
	return p, nil
}
