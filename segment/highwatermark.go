package segment

import (
	"fmt"
	"path/filepath"
)

// The high-watermark checkpoint lets a restarted broker resume from the
// high watermark it had instead of jumping to the log end (which would
// expose records no quorum acknowledged). The file is advisory: a missing
// or malformed file reads as the log start, the lowest safe value, and a
// stored value is clamped to the log as recovered, so a tail lost at a
// crash can never leave it above the log end.

// CheckpointHighWatermark persists hw as the partition's high watermark,
// replacing the file high-watermark-checkpoint atomically. hw is clamped to
// [LogStartOffset, LogEndOffset] first, as Kafka clamps its high
// watermark; a negative hw gives ErrOffsetOutOfRange. A value equal to the
// one last written is not written again. It takes the writer lock (a
// truncation waiting for views delays it); a failed write leaves the
// previous checkpoint in place and the log writable.
func (l *Log) CheckpointHighWatermark(hw int64) error {
	if hw < 0 {
		return fmt.Errorf("segment: checkpoint high watermark %d: %w", hw, ErrOffsetOutOfRange)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	hw = min(max(hw, l.ls.Load()), l.leo.Load())
	if err := l.writeHighWatermarkLocked(hw); err != nil {
		return err
	}
	l.hw.Store(hw)
	return nil
}

// HighWatermarkCheckpoint returns the last checkpointed high watermark
// (loaded by Open, or written since by CheckpointHighWatermark, or lowered
// by a truncation) clamped to [LogStartOffset, LogEndOffset]; the log start
// when no checkpoint exists. It never takes the writer lock.
func (l *Log) HighWatermarkCheckpoint() int64 {
	leo := l.leo.Load()
	return min(max(l.hw.Load(), l.ls.Load()), leo)
}

// loadHighWatermark reads the checkpoint during Open, after the log start
// and log end are known.
func (l *Log) loadHighWatermark() error {
	hw, ok, err := readOffsetCheckpoint(l.fs, filepath.Join(l.dir, hwCheckpointFile))
	if err != nil {
		return err
	}
	l.hwWritten = -1
	if ok {
		l.hwWritten = hw
	}
	l.hw.Store(min(max(hw, l.ls.Load()), l.leo.Load()))
	return nil
}

// lowerHighWatermarkLocked caps the checkpointed high watermark at end (a
// truncation point) and persists it when that changes it. Called with l.mu
// held.
func (l *Log) lowerHighWatermarkLocked(end int64) error {
	if l.hw.Load() <= end && l.hwWritten <= end {
		return nil
	}
	l.hw.Store(min(l.hw.Load(), end))
	return l.writeHighWatermarkLocked(l.hw.Load())
}

// writeHighWatermarkLocked writes hw unless the file already holds it, or
// there is no file and hw is the log start (what a missing file reads as:
// a new or idle partition costs no write). Called with l.mu held.
func (l *Log) writeHighWatermarkLocked(hw int64) error {
	if hw == l.hwWritten || (l.hwWritten < 0 && hw == l.ls.Load()) {
		return nil
	}
	if err := writeFileAtomic(l.fs, filepath.Join(l.dir, hwCheckpointFile), encodeOffsetCheckpoint(hw)); err != nil {
		return fmt.Errorf("segment: checkpoint high watermark: %w", err)
	}
	l.hwWritten = hw
	return nil
}
