package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Checkpoint file names inside a partition directory.
const (
	epochCheckpointFile    = "leader-epoch-checkpoint"
	recoveryCheckpointFile = "recovery-point-offset-checkpoint"
	logStartCheckpointFile = "log-start-offset-checkpoint"
	hwCheckpointFile       = "high-watermark-checkpoint"
	checkpointVersion      = 0
	maxCheckpointBytes     = 1 << 20
	maxEpochEntries        = 1 << 16
)

var errBadCheckpoint = errors.New("malformed checkpoint")

// EpochEntry says that leader epoch Epoch wrote its first batch at
// StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is the leader-epoch cache: entries strictly increasing in both
// epoch and start offset. The writer (holding Log.mu) changes it and
// persists it; readers take mu for reading only.
type epochCache struct {
	mu      sync.RWMutex
	entries []EpochEntry
}

func (c *epochCache) latest() (int32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.entries) == 0 {
		return -1, false
	}
	return c.entries[len(c.entries)-1].Epoch, true
}

func (c *epochCache) snapshot() []EpochEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]EpochEntry(nil), c.entries...)
}

// assign records that epoch starts at start, removing any entry with an
// epoch >= epoch or a start offset >= start (Kafka's rule). It reports
// whether anything changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if last.Epoch == epoch && last.StartOffset <= start {
			return false
		}
	}
	keep := c.entries[:0]
	for _, e := range c.entries {
		if e.Epoch < epoch && e.StartOffset < start {
			keep = append(keep, e)
		}
	}
	c.entries = append(keep, EpochEntry{Epoch: epoch, StartOffset: start})
	return true
}

// truncateFromEnd removes entries starting at or after end.
func (c *epochCache) truncateFromEnd(end int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= end {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart drops entries wholly below start; the entry covering
// start is moved up to begin at start.
func (c *epochCache) truncateFromStart(start int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].StartOffset <= start {
		i++
	}
	if len(c.entries) == 0 || (i == 0 && c.entries[0].StartOffset >= start) {
		return false
	}
	c.entries = append(c.entries[:0], c.entries[i:]...)
	c.entries[0].StartOffset = start
	return true
}

func (c *epochCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = c.entries[:0]
}

// endOffsetFor answers OffsetForLeaderEpoch as Kafka does: for the latest
// epoch the log end offset; for an older epoch the start offset of the
// next higher epoch, paired with the largest known epoch <= the request
// (or the request itself when it predates every entry); (-1, -1) when the
// request is above every known epoch or the cache is empty.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := len(c.entries)
	if epoch < 0 || n == 0 {
		return -1, -1
	}
	if c.entries[n-1].Epoch == epoch {
		return epoch, leo
	}
	for i, e := range c.entries {
		if e.Epoch > epoch {
			if i == 0 {
				return epoch, e.StartOffset
			}
			return c.entries[i-1].Epoch, e.StartOffset
		}
	}
	return -1, -1
}

func (c *epochCache) encode() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b := fmt.Appendf(nil, "%d\n%d\n", checkpointVersion, len(c.entries))
	for _, e := range c.entries {
		b = fmt.Appendf(b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b
}

// decodeEpochCheckpoint parses "version\ncount\n(epoch offset\n)*".
func decodeEpochCheckpoint(b []byte) ([]EpochEntry, error) {
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) < 2 || string(lines[0]) != strconv.Itoa(checkpointVersion) {
		return nil, fmt.Errorf("%w: bad version line", errBadCheckpoint)
	}
	n, err := strconv.Atoi(string(lines[1]))
	if err != nil || n < 0 || n > maxEpochEntries || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: bad count", errBadCheckpoint)
	}
	out := make([]EpochEntry, 0, n)
	for _, ln := range lines[2:] {
		f := bytes.Fields(ln)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: bad entry %q", errBadCheckpoint, ln)
		}
		ep, err1 := strconv.ParseInt(string(f[0]), 10, 32)
		off, err2 := strconv.ParseInt(string(f[1]), 10, 64)
		if err1 != nil || err2 != nil || ep < 0 || off < 0 {
			return nil, fmt.Errorf("%w: bad entry %q", errBadCheckpoint, ln)
		}
		if k := len(out); k > 0 && (int32(ep) <= out[k-1].Epoch || off <= out[k-1].StartOffset) {
			return nil, fmt.Errorf("%w: entries not increasing", errBadCheckpoint)
		}
		out = append(out, EpochEntry{Epoch: int32(ep), StartOffset: off})
	}
	return out, nil
}

// encodeOffsetCheckpoint / decodeOffsetCheckpoint: "version\noffset\n".
func encodeOffsetCheckpoint(off int64) []byte {
	return fmt.Appendf(nil, "%d\n%d\n", checkpointVersion, off)
}

func decodeOffsetCheckpoint(b []byte) (int64, error) {
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != 2 || string(lines[0]) != strconv.Itoa(checkpointVersion) {
		return 0, fmt.Errorf("%w: bad layout", errBadCheckpoint)
	}
	off, err := strconv.ParseInt(string(lines[1]), 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("%w: bad offset", errBadCheckpoint)
	}
	return off, nil
}

// readOffsetCheckpoint returns the stored offset, or ok=false when the file
// is missing or malformed (the caller then falls back to a safe default).
func readOffsetCheckpoint(fsys FS, path string) (int64, bool, error) {
	b, err := readFile(fsys, path, maxCheckpointBytes)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	off, err := decodeOffsetCheckpoint(b)
	if err != nil {
		return 0, false, nil
	}
	return off, true, nil
}
