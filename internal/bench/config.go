package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/segment"
)

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("bench: invalid config")

// Config sets up one benchmark run. Build it with DefaultConfig.
type Config struct {
	// Binary is the sluice executable started as `Binary broker ...`. Required.
	Binary string
	// WorkDir holds the broker data dir, TLS material, broker logs and the
	// raw-baseline files. Empty: a fresh directory under os.TempDir(),
	// removed at the end unless Keep.
	WorkDir string
	// BrokerArgs are appended to every `broker` command line (after the
	// benchmark's own flags, so they can override them).
	BrokerArgs []string
	// Keep leaves WorkDir in place.
	Keep bool
	// Size is how many bytes the produce phase writes (and so the range every
	// fetch pass reads). Default 1 GiB.
	Size int64
	// BatchBytes bounds one pre-built RecordBatch. Default 1 MiB (the broker's
	// default max.message.bytes is 1 MiB + 12).
	BatchBytes int
	// ValueBytes is the value size of each record. Default 1024.
	ValueBytes int
	// ProduceWindow is how many Produce requests are in flight on the one
	// producing connection. Default 4 (the broker reads 5 frames ahead).
	ProduceWindow int
	// FetchMaxBytes is the request and partition MaxBytes of every fetch.
	// Default 50 MiB.
	FetchMaxBytes int32
	// Conns is how many connections fetch in parallel, each reading the whole
	// range. Default 1.
	Conns int
	// Duration is the minimum measured time of each fetch phase and raw
	// fetch baseline; each connection also reads the whole range at least
	// once. Default 5s.
	Duration time.Duration
	// Rounds is how many times each path and its raw baseline are measured,
	// alternately, so that other load on the machine hits both alike; the
	// reported MB/s is the median round. The produce phase splits Size over
	// the rounds. Default 3.
	Rounds int
	// MaxPasses bounds the passes over the range per connection. Default 50.
	MaxPasses int
	// RawChunk is the bytes per sendfile/pread/write call in the raw
	// baselines. Default 256 KiB (on this 2-core EPYC, 64 KiB costs more
	// syscalls and 1 MiB falls out of the L2 cache between pread and
	// encryption; 256 KiB measured best for both copy and TLS).
	RawChunk int
	// KgoSize is how many value bytes a franz-go (kgo) producer writes with
	// acks=1, for a realistic-client figure. 0 = skip. Default 256 MiB.
	KgoSize int64
	// PhaseTimeout bounds every phase. Default 10 minutes.
	PhaseTimeout time.Duration
	// Progress receives a line a second while a phase runs; nil = silent.
	Progress io.Writer
	// Logger receives debug details; nil = discard.
	Logger *slog.Logger
}

// DefaultConfig returns the settings of the documented run (Binary unset).
func DefaultConfig() Config {
	return Config{
		Size:          1 << 30,
		BatchBytes:    1 << 20,
		ValueBytes:    1024,
		ProduceWindow: 4,
		FetchMaxBytes: 50 << 20,
		Conns:         1,
		Rounds:        3,
		Duration:      5 * time.Second,
		MaxPasses:     50,
		RawChunk:      256 << 10,
		KgoSize:       256 << 20,
		PhaseTimeout:  10 * time.Minute,
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Binary == "" {
		bad("Binary is empty")
	}
	if c.Size < 1<<20 || c.Size > 1<<40 {
		bad("Size %d outside [1 MiB, 1 TiB]", c.Size)
	}
	if c.BatchBytes < 4<<10 || c.BatchBytes > 64<<20 {
		bad("BatchBytes %d outside [4 KiB, 64 MiB]", c.BatchBytes)
	}
	if c.ValueBytes < 0 || c.ValueBytes > c.BatchBytes-segment.HeaderSize-32 {
		bad("ValueBytes %d outside [0, BatchBytes-93]", c.ValueBytes)
	}
	if c.ProduceWindow < 1 || c.ProduceWindow > 64 {
		bad("ProduceWindow %d outside [1, 64]", c.ProduceWindow)
	}
	if c.FetchMaxBytes < 64<<10 || c.FetchMaxBytes > 128<<20 {
		bad("FetchMaxBytes %d outside [64 KiB, 128 MiB]", c.FetchMaxBytes)
	}
	if int64(c.FetchMaxBytes) < int64(c.BatchBytes) {
		bad("FetchMaxBytes %d below BatchBytes %d", c.FetchMaxBytes, c.BatchBytes)
	}
	if c.Conns < 1 || c.Conns > 16 {
		bad("Conns %d outside [1, 16]", c.Conns)
	}
	if c.Duration < 0 || c.Duration > time.Hour {
		bad("Duration %v outside [0, 1h]", c.Duration)
	}
	if c.Rounds < 1 || c.Rounds > 100 {
		bad("Rounds %d outside [1, 100]", c.Rounds)
	}
	if c.MaxPasses < 1 || c.MaxPasses > 10000 {
		bad("MaxPasses %d outside [1, 10000]", c.MaxPasses)
	}
	if c.RawChunk < 4<<10 || c.RawChunk > 64<<20 {
		bad("RawChunk %d outside [4 KiB, 64 MiB]", c.RawChunk)
	}
	if c.KgoSize < 0 || c.KgoSize > 1<<40 {
		bad("KgoSize %d outside [0, 1 TiB]", c.KgoSize)
	}
	if c.PhaseTimeout <= 0 {
		bad("PhaseTimeout %v <= 0", c.PhaseTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
