package producerstate

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Kafka's "absent" markers, as they appear in a RecordBatch v2 header.
const (
	NoProducerID    int64 = -1 // RecordBatch.NO_PRODUCER_ID
	NoProducerEpoch int16 = -1 // RecordBatch.NO_PRODUCER_EPOCH
	NoSequence      int32 = -1 // RecordBatch.NO_SEQUENCE
)

// DefaultProducerIDExpiration is Kafka's producer.id.expiration.ms: the
// broker's ExpireIdle drops producers idle this long.
const DefaultProducerIDExpiration = 24 * time.Hour

// MaxRetainedBatches is how many of a producer's most recent batches are kept
// for duplicate detection (Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
// It is why idempotent clients cap max.in.flight.requests.per.connection at 5.
const MaxRetainedBatches = 5

// Errors returned by State.Check. The broker maps them to Kafka error codes.
var (
	// ErrInvalidProducerEpoch: the batch's epoch is older than the producer's
	// current epoch (a fenced zombie). INVALID_PRODUCER_EPOCH (47).
	ErrInvalidProducerEpoch = errors.New("producerstate: invalid producer epoch")
	// ErrOutOfOrderSequence: the batch does not continue the producer's
	// sequence, or a new epoch does not start at sequence 0.
	// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
	ErrOutOfOrderSequence = errors.New("producerstate: out of order sequence number")
	// ErrInvalidSequence: an idempotent batch (producer id >= 0) with a
	// negative base sequence. Kafka's LogValidator rejects it with
	// INVALID_RECORD (87).
	ErrInvalidSequence = errors.New("producerstate: invalid sequence number")
)

// BatchMeta is what the producer state needs to know about one record batch.
// Build it with NewBatchMeta from the batch header so that LastSequence wraps
// exactly as Kafka computes it.
type BatchMeta struct {
	ProducerID    int64 // < 0 (normally -1): not idempotent, ignored by State
	ProducerEpoch int16
	BaseSequence  int32
	LastSequence  int32 // IncrementSequence(BaseSequence, LastOffsetDelta)
	FirstOffset   int64 // offset assigned to the batch's first record
	LastOffset    int64 // FirstOffset + LastOffsetDelta
	MaxTimestamp  int64 // header MaxTimestamp (ms), after any LogAppendTime stamping
	Transactional bool  // attributes bit 4; recorded, not interpreted (see doc.go)
}

// NewBatchMeta builds a BatchMeta from RecordBatch v2 header fields.
// baseOffset is the offset assigned by the leader (or read from a replicated
// batch). LastSequence is NoSequence when baseSequence is NoSequence, as in
// Kafka's DefaultRecordBatch.lastSequence.
func NewBatchMeta(producerID int64, epoch int16, baseSequence int32, baseOffset int64,
	lastOffsetDelta int32, maxTimestamp int64, transactional bool) BatchMeta {
	last := NoSequence
	if baseSequence != NoSequence {
		last = IncrementSequence(baseSequence, lastOffsetDelta)
	}
	return BatchMeta{
		ProducerID:    producerID,
		ProducerEpoch: epoch,
		BaseSequence:  baseSequence,
		LastSequence:  last,
		FirstOffset:   baseOffset,
		LastOffset:    baseOffset + int64(lastOffsetDelta),
		MaxTimestamp:  maxTimestamp,
		Transactional: transactional,
	}
}

// Idempotent reports whether the batch carries a producer id, i.e. whether
// the producer state applies to it (Kafka's RecordBatch.hasProducerId).
func (b BatchMeta) Idempotent() bool { return b.ProducerID > NoProducerID }

// IncrementSequence adds delta to seq, wrapping past math.MaxInt32 to 0 the
// way Kafka's DefaultRecordBatch.incrementSequence does: sequences run
// 0..MaxInt32 and then start again at 0. seq and delta are expected to be
// non-negative.
func IncrementSequence(seq, delta int32) int32 {
	v := int64(seq) + int64(delta)
	if v > math.MaxInt32 {
		v -= math.MaxInt32 + 1
	}
	return int32(v)
}

// inSequence reports whether next directly follows last, including the wrap
// from MaxInt32 to 0 (ProducerAppendInfo.inSequence). last may be NoSequence,
// in which case only 0 follows.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// Duplicate describes the retained batch that an incoming batch repeats. The
// broker must not append the batch again; it answers the produce request
// with error NONE and these values (see doc.go).
type Duplicate struct {
	FirstOffset int64 // base offset of the original append
	LastOffset  int64
	Timestamp   int64 // the original batch's MaxTimestamp
}

// batch is one retained batch of a producer.
type batch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	maxTimestamp            int64
	transactional           bool
}

// entry is one producer's state: its current epoch and up to
// MaxRetainedBatches batches of that epoch, oldest first. An entry in State
// always holds at least one batch.
type entry struct {
	epoch   int16
	n       int
	batches [MaxRetainedBatches]batch
}

func (e *entry) last() *batch { return &e.batches[e.n-1] }

func (e *entry) add(b batch) {
	if e.n == MaxRetainedBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = b
	e.n++
}

// State is the idempotent-producer state of one partition: for every
// producer id seen, its epoch and its last MaxRetainedBatches batches.
//
// The zero value is an empty State ready to use. A State is not safe for
// concurrent use; it belongs to the partition's single writer (use Clone to
// hand a copy to another goroutine, e.g. for a background snapshot).
type State struct {
	producers map[int64]*entry
}

// New returns an empty State.
func New() *State { return &State{} }

// Len returns the number of producers tracked.
func (s *State) Len() int { return len(s.producers) }

// Check validates an incoming client batch against the state before it is
// appended, in the order Kafka's UnifiedLog.analyzeAndValidateProducerState
// and ProducerAppendInfo apply the rules:
//
//   - non-idempotent batch (ProducerID < 0): (nil, nil);
//   - negative BaseSequence: ErrInvalidSequence;
//   - same epoch as the producer and the exact (BaseSequence, LastSequence)
//     range of a retained batch: that batch as a *Duplicate, nil error;
//   - epoch older than the producer's: ErrInvalidProducerEpoch;
//   - new epoch (bump) of a known producer: BaseSequence must be 0;
//   - unknown producer: any epoch and any sequence is accepted (KIP-360);
//   - same epoch: BaseSequence must follow the last retained batch's
//     LastSequence (MaxInt32 wraps to 0), else ErrOutOfOrderSequence.
//
// Check does not modify the state; call Update after the batch is appended.
// Only one batch per producer may be between Check and Update at a time.
func (s *State) Check(b BatchMeta) (*Duplicate, error) {
	if !b.Idempotent() {
		return nil, nil
	}
	if b.BaseSequence < 0 {
		return nil, fmt.Errorf("producer %d: base sequence %d: %w", b.ProducerID, b.BaseSequence, ErrInvalidSequence)
	}
	e := s.producers[b.ProducerID]
	current := NoProducerEpoch
	if e != nil {
		current = e.epoch
		if b.ProducerEpoch == e.epoch {
			for i := range e.n {
				r := &e.batches[i]
				if r.firstSeq == b.BaseSequence && r.lastSeq == b.LastSequence {
					return &Duplicate{FirstOffset: r.firstOffset, LastOffset: r.lastOffset, Timestamp: r.maxTimestamp}, nil
				}
			}
		}
	}
	if b.ProducerEpoch < current {
		return nil, fmt.Errorf("producer %d: epoch %d is older than current epoch %d: %w",
			b.ProducerID, b.ProducerEpoch, current, ErrInvalidProducerEpoch)
	}
	if b.ProducerEpoch != current {
		// A new epoch restarts sequences at 0. A producer with no known epoch
		// (never seen, expired, or its state lost with the log) may start
		// anywhere: since KIP-360 the broker no longer answers
		// UNKNOWN_PRODUCER_ID.
		if b.BaseSequence != 0 && current != NoProducerEpoch {
			return nil, fmt.Errorf("producer %d: new epoch %d (current %d) must start at sequence 0, got %d: %w",
				b.ProducerID, b.ProducerEpoch, current, b.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil, nil
	}
	if current == NoProducerEpoch {
		return nil, nil
	}
	lastSeq := e.last().lastSeq
	if !inSequence(lastSeq, b.BaseSequence) {
		return nil, fmt.Errorf("producer %d epoch %d: sequence %d does not follow %d: %w",
			b.ProducerID, b.ProducerEpoch, b.BaseSequence, lastSeq, ErrOutOfOrderSequence)
	}
	return nil, nil
}

// Update records a batch that has been appended to the log: by the leader
// after Check accepted it, or by a follower for every replicated batch (no
// validation, as Kafka's AppendOrigin.REPLICATION). A batch with a different
// epoch than the producer's replaces the producer's retained batches
// (ProducerStateEntry.maybeUpdateProducerEpoch). Non-idempotent batches are
// ignored, and so is a batch that does not start above the producer's newest
// retained batch: it is already applied, so replaying a log range that
// overlaps the state (say, from a little before a snapshot's offset) is
// harmless.
func (s *State) Update(b BatchMeta) {
	if !b.Idempotent() {
		return
	}
	e := s.producers[b.ProducerID]
	if e == nil {
		if s.producers == nil {
			s.producers = make(map[int64]*entry)
		}
		e = &entry{epoch: b.ProducerEpoch}
		s.producers[b.ProducerID] = e
	} else if b.FirstOffset <= e.last().lastOffset {
		return // already applied: a replay overlapping the state
	} else if e.epoch != b.ProducerEpoch {
		e.epoch = b.ProducerEpoch
		e.n = 0
	}
	e.add(batch{
		firstSeq:      b.BaseSequence,
		lastSeq:       b.LastSequence,
		firstOffset:   b.FirstOffset,
		lastOffset:    b.LastOffset,
		maxTimestamp:  b.MaxTimestamp,
		transactional: b.Transactional,
	})
}

// TruncateTo forgets every retained batch with LastOffset >= offset, after
// the log was truncated to offset; producers left without batches are
// removed. It returns the number of producers removed.
//
// This is an in-memory approximation: batches that were evicted from the
// retention window by the now-truncated ones cannot come back, and a removed
// producer may have had older state below offset. For Kafka's exact
// behaviour (ProducerStateManager.truncateAndReload) the broker reloads the
// newest snapshot at or below offset and replays the log up to offset with
// Update; see doc.go.
func (s *State) TruncateTo(offset int64) int {
	removed := 0
	for pid, e := range s.producers {
		n := e.n
		for n > 0 && e.batches[n-1].lastOffset >= offset {
			n--
		}
		if n == 0 {
			delete(s.producers, pid)
			removed++
			continue
		}
		e.n = n
	}
	return removed
}

// Reset forgets all producers (log truncated fully or deleted).
func (s *State) Reset() { clear(s.producers) }

// ExpireIdle removes producers whose last batch's MaxTimestamp is maxIdle or
// more before now, as Kafka's ProducerStateManager.removeExpiredProducers
// does with producer.id.expiration.ms (default 1 day). Like Kafka it uses the
// batch timestamp, which for CreateTime topics is the client's clock. It
// returns the number of producers removed.
func (s *State) ExpireIdle(now time.Time, maxIdle time.Duration) int {
	// Expired when now - lastTimestamp >= maxIdle, computed as a cutoff that
	// saturates instead of overflowing on absurd timestamps.
	nowMs, idleMs := now.UnixMilli(), maxIdle.Milliseconds()
	cutoff := nowMs - idleMs
	if idleMs > 0 && cutoff > nowMs {
		cutoff = math.MinInt64
	} else if idleMs < 0 && cutoff < nowMs {
		cutoff = math.MaxInt64
	}
	removed := 0
	for pid, e := range s.producers {
		if e.last().maxTimestamp <= cutoff {
			delete(s.producers, pid)
			removed++
		}
	}
	return removed
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := &State{}
	if len(s.producers) > 0 {
		c.producers = make(map[int64]*entry, len(s.producers))
		for pid, e := range s.producers {
			cp := *e
			c.producers[pid] = &cp
		}
	}
	return c
}

// Producer is a read-only copy of one producer's state.
type Producer struct {
	ProducerID int64
	Epoch      int16
	// Batches are the retained batches, oldest first (1..MaxRetainedBatches).
	Batches []BatchMeta
}

// LastSequence returns the last sequence of the newest retained batch.
func (p Producer) LastSequence() int32 { return p.Batches[len(p.Batches)-1].LastSequence }

// LastTimestamp returns the MaxTimestamp of the newest retained batch, the
// value ExpireIdle compares against.
func (p Producer) LastTimestamp() int64 { return p.Batches[len(p.Batches)-1].MaxTimestamp }

// Producer returns a copy of one producer's state.
func (s *State) Producer(producerID int64) (Producer, bool) {
	e := s.producers[producerID]
	if e == nil {
		return Producer{}, false
	}
	return e.export(producerID), true
}

// Producers returns copies of all producers' states, sorted by producer id
// (for DescribeProducers, debugging and tests).
func (s *State) Producers() []Producer {
	ids := slices.Sorted(maps.Keys(s.producers))
	out := make([]Producer, 0, len(ids))
	for _, pid := range ids {
		out = append(out, s.producers[pid].export(pid))
	}
	return out
}

func (e *entry) export(pid int64) Producer {
	p := Producer{ProducerID: pid, Epoch: e.epoch, Batches: make([]BatchMeta, e.n)}
	for i := range e.n {
		r := &e.batches[i]
		p.Batches[i] = BatchMeta{
			ProducerID:    pid,
			ProducerEpoch: e.epoch,
			BaseSequence:  r.firstSeq,
			LastSequence:  r.lastSeq,
			FirstOffset:   r.firstOffset,
			LastOffset:    r.lastOffset,
			MaxTimestamp:  r.maxTimestamp,
			Transactional: r.transactional,
		}
	}
	return p
}
