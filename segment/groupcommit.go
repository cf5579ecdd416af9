package segment

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// groupCommitMaxGather bounds how long an elected syncer waits for appends
// already in progress to finish writing before it starts the fdatasync.
const groupCommitMaxGather = 500 * time.Microsecond

// Group commit (DurabilityAlways)
//
// An appender writes under l.mu, releases it, then calls syncTo with the
// sequence number of its write. The first waiter that finds no sync running
// becomes the syncer: it first gathers, then captures the current write
// sequence, fdatasyncs every dirty segment outside all locks, and publishes
// the captured sequence as synced. Every append written before the capture
// is covered by that one fdatasync; appends that arrive during it are
// covered by the next, whose syncer is elected among them.
//
// Gathering: without it, N appenders in a closed loop split into two
// halves that alternate (the half released by sync k has not written again
// when sync k+1 starts), so a sync covers only N/2 appends. So the syncer
// of sync k+1 waits until as many callers have arrived since sync k's
// capture as arrived from sync k-1's capture to sync k's completion (the
// ones sync k covered plus the ones that queued behind it), bounded by
// groupCommitMaxGather. A lone appender never waits: the group it expects
// is itself. When load drops, one wait ends at the bound and the
// expectation follows the new group size.

// syncTo returns once every append up to sequence seq is synced.
func (l *Log) syncTo(seq int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.arrivals++
	if l.gathering.Load() {
		l.syncCond.Broadcast() // a gathering syncer waits for us
	}
	for {
		if l.syncErr != nil {
			return l.syncErr
		}
		if l.syncedSeq >= seq {
			return nil
		}
		if l.syncing {
			l.syncCond.Wait()
			continue
		}
		l.syncing = true
		l.gatherLocked()
		l.syncMu.Unlock()
		target, err := l.syncDirty()
		l.syncMu.Lock()
		l.syncing = false
		if err != nil {
			l.syncErr = fmt.Errorf("%w: %w", ErrFailed, err)
		} else if target > l.syncedSeq {
			l.syncedSeq = target
		}
		l.expectGroup = l.arrivals - l.prevCapture
		l.syncCond.Broadcast()
	}
}

// gatherLocked waits, with syncMu held, until the expected group has
// arrived or groupCommitMaxGather passes, then records the capture.
func (l *Log) gatherLocked() {
	defer func() { l.prevCapture, l.lastCapture = l.lastCapture, l.arrivals }()
	if l.arrivals-l.lastCapture >= l.expectGroup {
		return
	}
	var expired atomic.Bool
	timer := time.AfterFunc(groupCommitMaxGather, func() {
		expired.Store(true)
		l.syncMu.Lock()
		l.syncCond.Broadcast()
		l.syncMu.Unlock()
	})
	l.gathering.Store(true)
	for l.arrivals-l.lastCapture < l.expectGroup && !expired.Load() {
		l.syncCond.Wait()
	}
	l.gathering.Store(false)
	timer.Stop()
}

// syncDirty fdatasyncs every segment written since the last sync (and the
// directory when entries changed) and advances the recovery point to the
// log end offset it covers. It returns the append sequence the sync covers.
func (l *Log) syncDirty() (int64, error) {
	l.mu.Lock()
	target, leo, gen := l.writeSeq, l.leo.Load(), l.truncGen
	pinned := make([]*segment, 0, len(l.dirty))
	for _, s := range l.dirty {
		s.dirty = false
		if s.acquire() {
			pinned = append(pinned, s)
		}
	}
	l.dirty = l.dirty[:0]
	dirDirty := l.dirDirty
	l.dirDirty = false
	l.mu.Unlock()

	var errs []error
	if dirDirty {
		if err := syncDir(l.fs, l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range pinned {
		if err := s.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("sync %s: %w", s.path, err))
		}
		s.release()
	}
	if err := errors.Join(errs...); err != nil {
		l.mu.Lock()
		err = l.failLocked(err)
		l.mu.Unlock()
		return 0, err
	}
	l.mu.Lock()
	if gen == l.truncGen && leo > l.rp.Load() {
		l.rp.Store(leo) // a truncation since the capture may have lowered it
	}
	l.mu.Unlock()
	return target, nil
}
