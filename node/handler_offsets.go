package node

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/wire"
)

// ListOffsets special timestamps.
const (
	listLatest       = -1 // high watermark (LSO for read_committed; equal without transactions)
	listEarliest     = -2 // log start offset
	listMaxTimestamp = -3 // base offset of the batch with the largest timestamp (KIP-734; Kafka names the record)
)

// handleListOffsets answers earliest (-2), latest (-1), max timestamp (-3) and by-timestamp lookups.
// A timestamp lookup returns, as Kafka does, the offset and timestamp of the first record (in offset
// order) whose timestamp is >= the target (segment.Log.OffsetForTimestamp; it falls back to the
// batch's base offset and max timestamp for a batch it cannot walk). Nothing found, or a record at
// or above the high watermark, yields offset -1 and timestamp -1, as in Kafka.
func (c *conn) handleListOffsets(m *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.ListOffsetsResponse)
	reg := c.n.registry()
	for _, rt := range m.Topics {
		tr := kmsg.NewListOffsetsResponseTopic()
		tr.Topic = rt.Topic
		t := reg.get(rt.Topic)
		for _, rp := range rt.Partitions {
			pr := kmsg.NewListOffsetsResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.Timestamp, pr.Offset, pr.LeaderEpoch = -1, -1, -1
			cur := int32(-1)
			if m.Version >= 4 {
				cur = rp.CurrentLeaderEpoch
			}
			p, err := leaderOf(t, rt.Topic, rp.Partition, cur)
			if err == nil {
				err = listOffset(p, rp.Timestamp, &pr)
			}
			if err != nil {
				pr.ErrorCode = codeFor(err)
				c.countErr(wire.KeyListOffsets, pr.ErrorCode)
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

func listOffset(p *partition.Replica, ts int64, pr *kmsg.ListOffsetsResponseTopicPartition) error {
	hw := p.HighWatermark()
	leaderEpoch := p.Role().Epoch
	l := p.Log()
	switch ts {
	case listLatest:
		pr.Offset = hw
		pr.LeaderEpoch = leaderEpoch
	case listEarliest:
		pr.Offset = l.LogStartOffset()
		pr.LeaderEpoch = epochAt(l, pr.Offset)
		if pr.LeaderEpoch < 0 {
			pr.LeaderEpoch = leaderEpoch
		}
	case listMaxTimestamp:
		mts, off := l.MaxTimestampAndOffset()
		if off >= 0 && off < hw {
			pr.Timestamp, pr.Offset, pr.LeaderEpoch = mts, off, epochAt(l, off)
		}
	default:
		if ts < 0 {
			return fmt.Errorf("%w: unsupported ListOffsets timestamp %d", errInvalidRequest, ts)
		}
		off, found, ok := l.OffsetForTimestamp(ts)
		if ok && off < hw {
			pr.Timestamp, pr.Offset, pr.LeaderEpoch = found, off, epochAt(l, off)
		}
	}
	pr.OldStyleOffsets = []int64{pr.Offset} // v0 form; kmsg encodes it only for v0
	return nil
}

// epochAt returns the leader epoch of the batch holding offset in l, or -1 when unknown.
func epochAt(l *segment.Log, offset int64) int32 {
	epoch := int32(-1)
	for _, e := range l.EpochEntries() {
		if e.StartOffset > offset {
			break
		}
		epoch = e.Epoch
	}
	return epoch
}

// handleOffsetForLeaderEpoch returns, per partition, the end offset of the requested epoch (the start
// of the next epoch, or the log end offset for the latest), as Kafka does.
func (c *conn) handleOffsetForLeaderEpoch(m *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	reg := c.n.registry()
	for _, rt := range m.Topics {
		tr := kmsg.NewOffsetForLeaderEpochResponseTopic()
		tr.Topic = rt.Topic
		t := reg.get(rt.Topic)
		for _, rp := range rt.Partitions {
			pr := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.LeaderEpoch, pr.EndOffset = -1, -1
			cur := int32(-1)
			if m.Version >= 2 {
				cur = rp.CurrentLeaderEpoch
			}
			p, err := leaderOf(t, rt.Topic, rp.Partition, cur)
			if err == nil {
				pr.LeaderEpoch, pr.EndOffset = p.Log().EndOffsetForEpoch(rp.LeaderEpoch)
			} else {
				pr.ErrorCode = codeFor(err)
				c.countErr(wire.KeyOffsetForLeaderEpoch, pr.ErrorCode)
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

// handleInitProducerID hands out a fresh producer id with epoch 0 for idempotent producers.
// Transactions are not supported: a transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a
// non-retriable error clients surface at once instead of retrying forever.
func (c *conn) handleInitProducerID(ctx context.Context, m *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if m.TransactionalID != nil {
		resp.ErrorCode = wire.CodeTransactionalIDAuthorizationFailed
		c.countErr(wire.KeyInitProducerID, resp.ErrorCode)
		return resp
	}
	id, err := c.n.nextProducerID(ctx)
	if err != nil {
		// Not registered yet, no controller, a timeout: all transient, so answer the code clients retry.
		c.lg.Warn("allocate producer id", "err", err)
		resp.ErrorCode = wire.CodeCoordinatorNotAvailable
		c.countErr(wire.KeyInitProducerID, resp.ErrorCode)
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

// leaderOf resolves a partition of a topic that may be unknown (t == nil) to its local leader
// replica, fenced by the client's current leader epoch (-1: not sent).
func leaderOf(t *topic, name string, index, currentEpoch int32) (*partition.Replica, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return t.leaderFor(index, currentEpoch)
}
