package partition

import (
	"fmt"
	"time"

	"github.com/sluice-io/sluice/internal/producerstate"
	"github.com/sluice-io/sluice/segment"
)

// Idempotent-producer state is kept in memory per partition and snapshotted with a
// producerstate.Store into the partition directory (<offset, 20 digits>.snapshot, the offset being
// the log end offset the snapshot covers): periodically, and at close. On open the newest valid
// snapshot at or below the log end offset is loaded and the batch headers after it are replayed
// (segment.Log.ScanHeaders), so the state survives clean and unclean restarts; only the replay
// length differs.

// loadProducers opens the partition's snapshot store and rebuilds the producer state.
func (p *Replica) loadProducers() (*producerstate.State, error) {
	store, err := producerstate.OpenStore(p.log.Dir(), producerstate.StoreConfig{Keep: 2, Logger: p.lg})
	if err != nil {
		return nil, err
	}
	p.snaps = store
	return p.rebuildProducers()
}

// rebuildProducers rebuilds the producer state from the newest usable snapshot plus a replay of the
// log after it (at open, and after a follower's truncation, so that the state matches the log
// exactly).
func (p *Replica) rebuildProducers() (*producerstate.State, error) {
	store := p.snaps
	leo, start := p.log.LogEndOffset(), p.log.LogStartOffset()
	// Snapshots above the log end offset describe batches recovery or truncation removed.
	if err := store.DeleteAbove(leo); err != nil {
		return nil, err
	}
	p.snapMu.Lock()
	if p.lastSnapshot > leo {
		p.lastSnapshot = -1
	}
	p.snapMu.Unlock()
	st, off, found, err := store.Load(leo)
	if err != nil {
		return nil, err
	}
	from := start
	if found {
		from = max(off, start)
	} else {
		st = producerstate.New()
	}
	replayed := 0
	if from < leo {
		err := p.log.ScanHeaders(from, func(h segment.Header) error {
			if h.LastOffset() < from {
				return nil
			}
			st.Update(batchMeta(h))
			replayed++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("replay from %d: %w", from, err)
		}
	}
	if replayed > 0 || st.Len() > 0 {
		p.lg.Info("producer state restored", "producers", st.Len(), "replayed_batches", replayed,
			"snapshot_found", found, "from_offset", from)
	}
	return st, nil
}

// Snapshot saves the producer state at the current log end offset (the broker calls it
// periodically; Close saves one too). Idle producers expire first. The state is cloned under mu and
// written outside it, so Produce is blocked only for the copy. A closed replica saves nothing.
func (p *Replica) Snapshot() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.producers.ExpireIdle(time.Now(), producerstate.DefaultProducerIDExpiration)
	st, leo := p.producers.Clone(), p.log.LogEndOffset()
	p.mu.Unlock()
	return p.saveSnapshot(st, leo)
}

// snapshotLocked is Snapshot for a caller holding mu (close).
func (p *Replica) snapshotLocked() error {
	return p.saveSnapshot(p.producers, p.log.LogEndOffset())
}

func (p *Replica) saveSnapshot(st *producerstate.State, leo int64) error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	if leo == p.lastSnapshot || (p.lastSnapshot < 0 && st.Len() == 0) {
		// Nothing appended since the last snapshot, or nothing to save yet (without a snapshot the
		// state is rebuilt from the log, which gives the same empty state).
		return nil
	}
	if err := p.snaps.Save(st, leo); err != nil {
		return err
	}
	p.lastSnapshot = leo
	return nil
}

// Producer returns the producer state of producerID, if this replica retains any.
func (p *Replica) Producer(producerID int64) (producerstate.Producer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.producers.Producer(producerID)
}
