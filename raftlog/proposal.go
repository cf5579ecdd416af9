package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

var (
	// ErrNotLeader reports a proposal made to a node that is not the raft
	// leader. The error is a *NotLeaderError naming the leader, if known.
	ErrNotLeader = errors.New("raftlog: not the raft leader")
	// ErrStopped reports a Node that is not running (Run returned or was
	// never called) or a Transport that is closed.
	ErrStopped = errors.New("raftlog: stopped")
	// ErrProposalDropped reports a proposal that will never be applied: raft
	// refused it (a conf change while another is pending, a leadership
	// transfer in progress) or a new leader overwrote its log entry.
	ErrProposalDropped = errors.New("raftlog: proposal dropped")
	// ErrProposalUnknown reports a proposal whose outcome this node cannot
	// tell: a snapshot from the leader replaced the log past its entry.
	// Read the state machine to find out.
	ErrProposalUnknown = errors.New("raftlog: proposal outcome unknown")
	// ErrConfChange reports a configuration change that is invalid for the
	// current configuration (rejected on proposal, or skipped on apply by
	// every node alike).
	ErrConfChange = errors.New("raftlog: invalid configuration change")
)

// NotLeaderError is the ErrNotLeader of a proposal made to a follower or
// learner: Leader is the leader's node id, or 0 (raft.None) when no leader
// is known, so callers can forward the request.
type NotLeaderError struct {
	Leader uint64
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return "raftlog: not the raft leader (no leader known)"
	}
	return fmt.Sprintf("raftlog: not the raft leader (leader is node %d)", e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Entry envelope. Every normal entry a Node proposes carries, before the
// state machine's data, the id of the request that proposed it:
//
//	0   1  version (=1)
//	1   8  origin node id     (u64, big endian)
//	9   8  origin boot nonce  (random per NewNode)
//	17  8  sequence number    (per boot, from 1)
//	25     state machine data
//
// A conf change proposed by a Node carries the same 25-byte header, alone,
// in ConfChangeV2.Context. The boot nonce keeps a restarted node from
// mistaking an entry proposed by its previous run for a new proposal.
const (
	envelopeVersion = 1
	envelopeHeader  = 25
)

// requestID identifies one proposal cluster-wide.
type requestID struct {
	origin, boot, seq uint64
}

func appendEnvelope(dst []byte, id requestID, data []byte) []byte {
	dst = append(dst, envelopeVersion)
	dst = binary.BigEndian.AppendUint64(dst, id.origin)
	dst = binary.BigEndian.AppendUint64(dst, id.boot)
	dst = binary.BigEndian.AppendUint64(dst, id.seq)
	return append(dst, data...)
}

// errEnvelope reports committed entry data that is not an envelope.
var errEnvelope = errors.New("raftlog: entry is not a request envelope")

func parseEnvelope(b []byte) (requestID, []byte, error) {
	if len(b) < envelopeHeader || b[0] != envelopeVersion {
		return requestID{}, nil, fmt.Errorf("%w (%d bytes)", errEnvelope, len(b))
	}
	id := requestID{
		origin: binary.BigEndian.Uint64(b[1:]),
		boot:   binary.BigEndian.Uint64(b[9:]),
		seq:    binary.BigEndian.Uint64(b[17:]),
	}
	return id, b[envelopeHeader:], nil
}

// proposal is one Propose or conf change call waiting for its entry.
type proposal struct {
	id    requestID
	data  []byte       // normal entry: the envelope
	cc    *confProp    // conf change, when data is nil
	index uint64       // log index, once seen in a Ready's Entries (0: not yet)
	done  chan outcome // buffered (1); receives exactly one value
}

// confProp is a conf change proposal: the change (Context set to the
// request's header) and its check against the current configuration.
type confProp struct {
	cc    *raftpb.ConfChangeV2
	check func(*raftpb.ConfState) error
}

// outcome is a proposal's outcome.
type outcome struct {
	index  uint64
	result any
	err    error
}

func (p *proposal) finish(d outcome) {
	select {
	case p.done <- d:
	default: // already finished; never happens by construction
	}
}

// propTracker matches proposals to log entries. It belongs to the raft loop.
//
// A proposal is tracked by request id from the moment raft accepts it. The
// next Ready's Entries must hold its entry (raft appends a leader's
// proposals to its unstable log synchronously); the entry's index is noted
// then, and a proposal missing from that Ready was dropped by raft. When
// the entry at a noted index is applied, the proposal completes with the
// state machine's result if the entry is still its own, and with
// ErrProposalDropped if a later leader overwrote it. Proposals therefore
// survive a leader change when their entry does.
type propTracker struct {
	byID    map[requestID]*proposal
	byIndex map[uint64]*proposal
	unseen  []*proposal // accepted since the last Ready
}

func newTracker() *propTracker {
	return &propTracker{byID: map[requestID]*proposal{}, byIndex: map[uint64]*proposal{}}
}

func (t *propTracker) add(p *proposal) {
	t.byID[p.id] = p
	t.unseen = append(t.unseen, p)
}

// appended notes the index of a request's entry appended to the log.
func (t *propTracker) appended(id requestID, index uint64) {
	if p, ok := t.byID[id]; ok && p.index == 0 {
		p.index = index
		t.byIndex[index] = p
	}
}

// endReady fails the proposals accepted before this Ready whose entries it
// did not carry.
func (t *propTracker) endReady() {
	for _, p := range t.unseen {
		if p.index == 0 {
			delete(t.byID, p.id)
			p.finish(outcome{err: ErrProposalDropped})
		}
	}
	clear(t.unseen)
	t.unseen = t.unseen[:0]
}

// applied completes the proposal of request id (ok: the entry carried one)
// or, failing that, the proposal that expected index.
func (t *propTracker) applied(index uint64, id requestID, ok bool, result any, err error) {
	if ok {
		if p, found := t.byID[id]; found {
			delete(t.byID, id)
			delete(t.byIndex, p.index)
			p.finish(outcome{index: index, result: result, err: err})
			return
		}
	}
	if p, found := t.byIndex[index]; found {
		delete(t.byIndex, index)
		delete(t.byID, p.id)
		p.finish(outcome{index: index, err: ErrProposalDropped})
	}
}

// restored fails the proposals whose entries a snapshot at index covers.
func (t *propTracker) restored(index uint64) {
	for i, p := range t.byIndex {
		if i <= index {
			delete(t.byIndex, i)
			delete(t.byID, p.id)
			p.finish(outcome{err: fmt.Errorf("%w: snapshot at %d covers index %d", ErrProposalUnknown, index, i)})
		}
	}
}

// failAll ends every proposal with err (the node is stopping).
func (t *propTracker) failAll(err error) {
	for id, p := range t.byID {
		delete(t.byID, id)
		p.finish(outcome{err: err})
	}
	clear(t.byIndex)
	clear(t.unseen)
	t.unseen = t.unseen[:0]
}
