package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// background is the log's flusher goroutine, started by Open and stopped by
// Close. It syncs rolled segments (all policies) so the recovery point keeps
// up, and runs the periodic sync of DurabilityInterval.
func (l *Log) background() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.cfg.Durability == DurabilityInterval {
		t := time.NewTicker(l.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
			if err := l.flushSealed(); err != nil {
				l.log.Warn("background flush of rolled segments failed", "err", err)
			}
		case <-tick:
			if err := l.syncTo(l.currentSeq()); err != nil {
				l.log.Warn("interval sync failed", "err", err)
			}
		}
	}
}

func (l *Log) currentSeq() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writeSeq
}

// flushSealed syncs every write so far, then the index files of segments
// rolled since the last call, then records the recovery point. It holds no
// pin while it waits for the writer lock (a truncation holding that lock
// may be waiting for pins to drain).
func (l *Log) flushSealed() error {
	l.mu.Lock()
	seq := l.writeSeq
	sealed := l.sealed
	l.sealed = nil
	l.mu.Unlock()
	if err := l.syncTo(seq); err != nil {
		return err
	}
	for _, s := range sealed {
		if !s.acquire() {
			continue // deleted or truncated meanwhile
		}
		var err error
		if s.indexesWritten {
			for _, p := range []string{s.indexPath(), s.timeIndexPath()} {
				if e := syncFile(l.fs, p); e != nil && !errors.Is(e, os.ErrNotExist) && err == nil {
					err = e
				}
			}
		}
		s.release()
		if err != nil {
			return err
		}
	}
	return l.checkpointRecoveryPoint()
}

// checkpointRecoveryPoint persists the in-memory recovery point.
func (l *Log) checkpointRecoveryPoint() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writeRecoveryPoint(l.rp.Load())
}

// Flush makes every append so far durable (whatever the policy) and
// persists the recovery point.
func (l *Log) Flush() error {
	if l.closedFlg.Load() {
		return ErrClosed
	}
	if err := l.flushSealed(); err != nil {
		return fmt.Errorf("segment: flush %s: %w", l.dir, err)
	}
	return nil
}

// Close flushes, writes the active segment's index files so the next Open
// need not re-validate it, and closes the log. Files of segments pinned by
// views close when the views are released. Idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.closedFlg.Store(true)
	l.mu.Unlock()
	close(l.stop)
	<-l.done

	err := l.flushSealed()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && l.failErr == nil {
		err = l.sealActiveLocked()
	}
	for _, s := range l.segs.Load().segs {
		s.kill(finalizeClose)
	}
	if err != nil {
		return fmt.Errorf("segment: close %s: %w", l.dir, err)
	}
	return nil
}

// sealActiveLocked writes and syncs the active segment's index files and
// records the log end offset as the recovery point: a clean shutdown.
func (l *Log) sealActiveLocked() error {
	s := l.active
	if err := s.writeIndexes(l.fs); err != nil {
		return err
	}
	for _, p := range []string{s.indexPath(), s.timeIndexPath()} {
		if err := syncFile(l.fs, p); err != nil {
			return err
		}
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return err
	}
	return l.writeRecoveryPoint(l.rp.Load())
}

// Delete closes the log, waits for every view to be released, and removes
// the directory with everything in it.
func (l *Log) Delete() error {
	cerr := l.Close()
	for _, s := range l.segs.Load().segs {
		<-s.drained
	}
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("segment: delete %s: %w", l.dir, err)
	}
	for _, e := range entries {
		if err := removeIfExists(l.fs, filepath.Join(l.dir, e.Name())); err != nil {
			return fmt.Errorf("segment: delete %s: %w", l.dir, err)
		}
	}
	if err := l.fs.Remove(l.dir); err != nil {
		return fmt.Errorf("segment: delete %s: %w", l.dir, err)
	}
	_ = cerr // a failed final flush does not matter for a deleted log
	return nil
}
