package producerstate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// AllocatorFileName is the file, inside the allocator's directory, that
// records the producer-id high-water mark.
const AllocatorFileName = "producer-ids"

const (
	allocatorVersion  = 1
	allocatorFileSize = 20 // magic 4, version 2, reserved 2, high-water 8, CRC-32C 4
)

var allocatorMagic = [4]byte{'S', 'L', 'P', 'I'}

var (
	// ErrCorruptAllocator: the allocator file exists but cannot be trusted.
	// The allocator refuses to start rather than risk reusing producer ids.
	ErrCorruptAllocator = errors.New("producerstate: corrupt producer id allocator file")
	// ErrIDsExhausted: every non-negative int64 has been handed out.
	ErrIDsExhausted = errors.New("producerstate: producer ids exhausted")
)

// AllocatorConfig configures an IDAllocator.
type AllocatorConfig struct {
	// BlockSize is how many ids are reserved by one durable write. Must be
	// >= 1; the zero value is invalid. Ids of a reserved block that were not
	// handed out before a restart are skipped, never reused.
	BlockSize int64
	// Logger receives an Info line per reserved block. nil discards.
	Logger *slog.Logger
}

// DefaultAllocatorConfig returns the defaults.
func DefaultAllocatorConfig() AllocatorConfig {
	return AllocatorConfig{
		// Kafka's controller hands out producer-id blocks of 1000
		// (ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
		BlockSize: 1000,
	}
}

// Validate reports a configuration error.
func (c AllocatorConfig) Validate() error {
	if c.BlockSize < 1 {
		return fmt.Errorf("producerstate: AllocatorConfig.BlockSize = %d, must be >= 1", c.BlockSize)
	}
	return nil
}

// IDAllocator hands out producer ids for InitProducerId on a single node.
// Ids are unique across restarts: before the first id of a block is handed
// out, the end of the block (the high-water mark) is written durably to
// AllocatorFileName, and a restarted allocator continues from the recorded
// high-water mark.
//
// IDAllocator is safe for concurrent use.
type IDAllocator struct {
	path string
	cfg  AllocatorConfig
	log  *slog.Logger

	mu    sync.Mutex
	next  int64 // next id to hand out
	limit int64 // durable high-water mark: ids < limit may have been handed out
}

// OpenIDAllocator opens (or, if the file is missing, starts) the allocator
// stored in dir, creating dir if needed. A present but unreadable or corrupt
// file is an error wrapping ErrCorruptAllocator.
func OpenIDAllocator(dir string, cfg AllocatorConfig) (*IDAllocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("producerstate: open allocator: %w", err)
	}
	path := filepath.Join(dir, AllocatorFileName)
	// A leftover temporary file is a reservation that never became durable,
	// so no id from it was handed out.
	if err := removeIfExists(path + tmpSuffix); err != nil {
		return nil, fmt.Errorf("producerstate: open allocator: %w", err)
	}
	a := &IDAllocator{path: path, cfg: cfg, log: log}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return a, nil
	case err != nil:
		return nil, fmt.Errorf("producerstate: open allocator: %w", err)
	}
	hw, err := decodeAllocatorFile(data)
	if err != nil {
		return nil, fmt.Errorf("producerstate: %s: %w", path, err)
	}
	a.next, a.limit = hw, hw
	return a, nil
}

// Next returns a producer id never returned before by this allocator
// directory. It blocks for one durable file write every BlockSize calls;
// if that write fails, the error is returned and no id is handed out.
func (a *IDAllocator) Next() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.limit {
		if a.limit == math.MaxInt64 {
			return 0, ErrIDsExhausted
		}
		newLimit := a.limit + min(a.cfg.BlockSize, math.MaxInt64-a.limit)
		if err := writeFileAtomic(a.path, encodeAllocatorFile(newLimit)); err != nil {
			return 0, fmt.Errorf("producerstate: reserve producer ids [%d, %d): %w", a.limit, newLimit, err)
		}
		a.log.Info("reserved producer id block", "first_id", a.limit, "end_id", newLimit)
		a.limit = newLimit
	}
	id := a.next
	a.next++
	return id, nil
}

// HighWatermark returns the durable high-water mark: every id handed out so
// far, and every id a restart could have handed out, is below it.
func (a *IDAllocator) HighWatermark() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}

func encodeAllocatorFile(hw int64) []byte {
	b := make([]byte, 0, allocatorFileSize)
	b = append(b, allocatorMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, allocatorVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(hw))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeAllocatorFile(b []byte) (int64, error) {
	if len(b) != allocatorFileSize {
		return 0, fmt.Errorf("size %d, want %d: %w", len(b), allocatorFileSize, ErrCorruptAllocator)
	}
	if got, want := binary.BigEndian.Uint32(b[16:]), crc32.Checksum(b[:16], castagnoli); got != want {
		return 0, fmt.Errorf("crc %#08x, computed %#08x: %w", got, want, ErrCorruptAllocator)
	}
	if [4]byte(b[0:4]) != allocatorMagic {
		return 0, fmt.Errorf("bad magic %x: %w", b[0:4], ErrCorruptAllocator)
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != allocatorVersion {
		return 0, fmt.Errorf("unknown version %d: %w", v, ErrCorruptAllocator)
	}
	if f := binary.BigEndian.Uint16(b[6:8]); f != 0 {
		return 0, fmt.Errorf("unknown flags %#x: %w", f, ErrCorruptAllocator)
	}
	hw := int64(binary.BigEndian.Uint64(b[8:16]))
	if hw < 0 {
		return 0, fmt.Errorf("negative high-water mark %d: %w", hw, ErrCorruptAllocator)
	}
	return hw, nil
}
