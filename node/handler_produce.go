package node

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/wire"
)

// handleProduce appends each partition's batch and builds the response. failed reports whether any
// partition failed (with acks=0 the caller then closes the connection, as Kafka does).
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
//   - acks=-1 with min.insync.replicas > 1 -> NOT_ENOUGH_REPLICAS (a single node is one replica);
//   - producer state: stale epoch -> INVALID_PRODUCER_EPOCH, gap -> OUT_OF_ORDER_SEQUENCE_NUMBER,
//     duplicate -> success with the original base offset.
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
			code := whole
			if code == wire.CodeNone {
				if terr != nil {
					err = terr
				} else if p, perr := c.n.leaderForProduce(t, rp.Partition); perr != nil {
					err = perr
				} else {
					var res appendResult
					res, err = c.produceOne(p, rp.Records, m.Version, m.Acks)
					if err == nil && !c.n.leaseValid() {
						// The lease ran out during the append (a long fsync, a pause): the
						// controller may have moved the partition, so this write is not
						// acknowledged. It stays in this replica's log only, like an unanswered
						// write to any leader that fails.
						err = fmt.Errorf("%w: %s-%d: the controller lease ran out during the append", ErrNotLeader, t.name, rp.Partition)
					}
					if err == nil {
						pr.BaseOffset, pr.LogStartOffset = res.baseOffset, res.logStartOffset
					}
				}
				code = codeFor(err)
			}
			if code != wire.CodeNone {
				failed = true
				pr.ErrorCode = code
				c.countErr(req.Key, code)
				if err != nil {
					msg := err.Error()
					pr.ErrorMessage = &msg
					if code == wire.CodeUnknownServerError {
						c.lg.Warn("produce", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
				}
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp, failed
}

// produceOne validates and appends one partition's records.
func (c *conn) produceOne(p *partition, records []byte, version, acks int16) (appendResult, error) {
	if len(records) == 0 {
		return appendResult{}, ErrNoRecords
	}
	// Exactly one batch: a declared length shorter than the buffer means more batches (or junk)
	// follow. A longer one is a truncated batch, which ValidateBatch reports as corrupt.
	if h, err := segment.ParseHeader(records); err == nil {
		if size := h.Size(); size >= segment.HeaderSize && size < len(records) {
			return appendResult{}, fmt.Errorf("%w: first batch is %d of %d bytes", ErrMultipleBatches, size, len(records))
		}
	}
	checked, err := segment.Check(records, p.cfg.log.MaxBatchBytes)
	if err != nil {
		return appendResult{}, err
	}
	h := checked.Header()
	switch {
	case h.BaseOffset != 0:
		return appendResult{}, fmt.Errorf("%w: %d", ErrBaseOffsetNonZero, h.BaseOffset)
	case h.Control():
		return appendResult{}, ErrControlBatch
	case h.Transactional():
		return appendResult{}, ErrTransactional
	case h.Codec() == segment.CodecZstd && version < 7:
		return appendResult{}, fmt.Errorf("%w: produce v%d", ErrCompressionVersion, version)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return appendResult{}, fmt.Errorf("%w: producer %d sequence %d", ErrNegativeSequence, h.ProducerID, h.BaseSequence)
	case acks == -1 && p.cfg.minInsync > 1:
		return appendResult{}, fmt.Errorf("%w: min.insync.replicas=%d, in-sync replicas 1", ErrNotEnoughReplicas, p.cfg.minInsync)
	}
	res, err := p.append(checked)
	if err != nil {
		return res, err
	}
	if !res.duplicate {
		m := c.n.metrics
		m.produceBytes.Add(float64(len(records)))
		m.produceRecords.Add(float64(h.NumRecords))
		m.produceBatches.Inc()
	}
	return res, nil
}

// leaderForProduce returns the local leader replica of a partition, refusing when this broker may
// not lead (fenced, or a zombie whose heartbeats fail) whatever its image says.
func (n *Node) leaderForProduce(t *topic, i int32) (*partition, error) {
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
