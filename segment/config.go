package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Durability is the fsync policy of a log. See docs/storage.md for what each
// promises after a power loss.
type Durability int

const (
	// DurabilityNever leaves data in the page cache; durability comes from
	// replication (Kafka's default). Rolled segments are still synced in the
	// background so recovery after a crash stays short.
	DurabilityNever Durability = iota
	// DurabilityInterval fdatasyncs dirty segments every FlushInterval.
	DurabilityInterval
	// DurabilityAlways fdatasyncs before an append returns; concurrent
	// appends share one fdatasync (group commit).
	DurabilityAlways
)

// String returns "never", "interval" or "always".
func (d Durability) String() string {
	switch d {
	case DurabilityNever:
		return "never"
	case DurabilityInterval:
		return "interval"
	case DurabilityAlways:
		return "always"
	}
	return fmt.Sprintf("durability(%d)", int(d))
}

// ParseDurability parses "never", "interval" or "always".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "never":
		return DurabilityNever, nil
	case "interval":
		return DurabilityInterval, nil
	case "always":
		return DurabilityAlways, nil
	}
	return 0, fmt.Errorf("segment: unknown durability %q (want never, interval or always)", s)
}

// Config holds the settings of one log. The zero value is not valid; start
// from DefaultConfig.
type Config struct {
	// SegmentBytes rolls the active segment when an append would take it
	// past this size. At most math.MaxInt32 (index positions are 32-bit).
	SegmentBytes int64
	// SegmentMaxAge rolls a non-empty active segment whose first append is
	// older than this. 0 disables rolling by age.
	SegmentMaxAge time.Duration
	// IndexIntervalBytes is the spacing of sparse index entries.
	IndexIntervalBytes int
	// RetentionBytes bounds the total log size; -1 is unlimited.
	RetentionBytes int64
	// RetentionAge deletes segments whose newest batch timestamp is older
	// than this; a negative value is unlimited.
	RetentionAge time.Duration
	// MaxBatchBytes is the largest batch accepted (max.message.bytes).
	MaxBatchBytes int
	// Durability is the fsync policy.
	Durability Durability
	// FlushInterval is the sync period for DurabilityInterval.
	FlushInterval time.Duration
	// FS is the file-system seam; nil means the real file system.
	FS FS
	// Logger receives state changes (rolls, recovery, retention); nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for segment age and retention; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns Kafka-like defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,            // 1 GiB, log.segment.bytes
		SegmentMaxAge:      7 * 24 * time.Hour, // log.roll.hours
		IndexIntervalBytes: 4096,               // log.index.interval.bytes
		RetentionBytes:     -1,                 // log.retention.bytes: unlimited
		RetentionAge:       7 * 24 * time.Hour, // log.retention.hours
		MaxBatchBytes:      1048588,            // max.message.bytes: 1 MiB + 12
		Durability:         DurabilityNever,    // replication provides durability
		FlushInterval:      time.Second,        // used only by DurabilityInterval
	}
}

// Validate rejects settings the log cannot honour.
func (c Config) Validate() error {
	var errs []error
	if c.SegmentBytes < HeaderSize || c.SegmentBytes > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("SegmentBytes %d outside [%d, %d]", c.SegmentBytes, HeaderSize, math.MaxInt32))
	}
	if c.SegmentMaxAge < 0 {
		errs = append(errs, fmt.Errorf("SegmentMaxAge %v is negative", c.SegmentMaxAge))
	}
	if c.IndexIntervalBytes <= 0 {
		errs = append(errs, fmt.Errorf("IndexIntervalBytes %d must be positive", c.IndexIntervalBytes))
	}
	if c.RetentionBytes < -1 {
		errs = append(errs, fmt.Errorf("RetentionBytes %d must be -1 or >= 0", c.RetentionBytes))
	}
	if c.MaxBatchBytes < HeaderSize {
		errs = append(errs, fmt.Errorf("MaxBatchBytes %d below the batch header size %d", c.MaxBatchBytes, HeaderSize))
	}
	switch c.Durability {
	case DurabilityNever, DurabilityAlways:
	case DurabilityInterval:
		if c.FlushInterval <= 0 {
			errs = append(errs, fmt.Errorf("FlushInterval %v must be positive with durability interval", c.FlushInterval))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown Durability %d", int(c.Durability)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("segment: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
