package producerstate

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func openAllocator(t *testing.T, dir string, block int64) *IDAllocator {
	t.Helper()
	cfg := DefaultAllocatorConfig()
	cfg.BlockSize = block
	a, err := OpenIDAllocator(dir, cfg)
	if err != nil {
		t.Fatalf("OpenIDAllocator: %v", err)
	}
	return a
}

func next(t *testing.T, a *IDAllocator) int64 {
	t.Helper()
	id, err := a.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return id
}

func TestAllocatorConfigValidate(t *testing.T) {
	if err := DefaultAllocatorConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenIDAllocator(t.TempDir(), AllocatorConfig{}); err == nil {
		t.Fatal("OpenIDAllocator with BlockSize 0 succeeded")
	}
}

func TestAllocatorRestartNeverReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	seen := map[int64]bool{}
	prev := int64(-1)
	// Restart after various numbers of ids, including exactly at a block
	// boundary and before any id was handed out.
	for round, count := range []int{3, 0, 10, 1, 25, 7} {
		a := openAllocator(t, dir, 10)
		for range count {
			id := next(t, a)
			if seen[id] || id <= prev {
				t.Fatalf("round %d: id %d after %d (seen before: %v)", round, id, prev, seen[id])
			}
			seen[id] = true
			prev = id
			if hw := a.HighWatermark(); id >= hw {
				t.Fatalf("round %d: id %d not below durable high-water mark %d", round, id, hw)
			}
		}
	}
	// A fresh allocator continues exactly at the recorded high-water mark.
	a := openAllocator(t, dir, 10)
	data, err := os.ReadFile(filepath.Join(dir, AllocatorFileName))
	if err != nil {
		t.Fatal(err)
	}
	hw, err := decodeAllocatorFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := next(t, a); got != hw || got <= prev {
		t.Fatalf("first id after restart = %d, want the recorded high-water mark %d (> %d)", got, hw, prev)
	}
}

func TestAllocatorFirstIDs(t *testing.T) {
	dir := t.TempDir()
	a := openAllocator(t, dir, 3)
	for want := range int64(7) {
		if got := next(t, a); got != want {
			t.Fatalf("Next = %d, want %d", got, want)
		}
	}
	if hw := a.HighWatermark(); hw != 9 {
		t.Fatalf("HighWatermark = %d, want 9", hw)
	}
	b := openAllocator(t, dir, 3)
	if got := next(t, b); got != 9 {
		t.Fatalf("Next after restart = %d, want 9", got)
	}
	assertNoTempFiles(t, dir)
}

func TestAllocatorConcurrent(t *testing.T) {
	a := openAllocator(t, t.TempDir(), 7)
	const workers, per = 8, 50
	ids := make(chan int64, workers*per)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				id, err := a.Next()
				if err != nil {
					t.Errorf("Next: %v", err)
					return
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %d handed out twice", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*per {
		t.Fatalf("got %d ids, want %d", len(seen), workers*per)
	}
}

func TestAllocatorCorruptFile(t *testing.T) {
	good := encodeAllocatorFile(12345)
	if hw, err := decodeAllocatorFile(good); err != nil || hw != 12345 {
		t.Fatalf("decode(encode(12345)) = %d, %v", hw, err)
	}
	var bad [][]byte
	for n := range len(good) {
		bad = append(bad, good[:n])
	}
	bad = append(bad, append(append([]byte{}, good...), 0))
	for i := range len(good) * 8 {
		b := append([]byte{}, good...)
		b[i/8] ^= 1 << (i % 8)
		bad = append(bad, b)
	}
	// CRC-valid but semantically wrong contents.
	for _, tamper := range []func(b []byte){
		func(b []byte) { b[0] = 'X' },
		func(b []byte) { b[5] = 2 },
		func(b []byte) { b[7] = 1 },
		func(b []byte) { b[8] = 0x80 },
	} {
		b := append([]byte{}, good...)
		tamper(b)
		bad = append(bad, withCRC(b))
	}
	for i, b := range bad {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, AllocatorFileName), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if a, err := OpenIDAllocator(dir, DefaultAllocatorConfig()); !errors.Is(err, ErrCorruptAllocator) {
			t.Fatalf("case %d: OpenIDAllocator(%x) = %v, %v; want ErrCorruptAllocator", i, b, a, err)
		}
	}
}

// withCRC returns 16 header bytes followed by their valid CRC-32C.
func withCRC(h []byte) []byte {
	return reCRC(append(append([]byte{}, h[:16]...), 0, 0, 0, 0))
}

func TestAllocatorExhaustion(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, AllocatorFileName), encodeAllocatorFile(math.MaxInt64-2), 0o644); err != nil {
		t.Fatal(err)
	}
	a := openAllocator(t, dir, 1000)
	for _, want := range []int64{math.MaxInt64 - 2, math.MaxInt64 - 1} {
		if got := next(t, a); got != want {
			t.Fatalf("Next = %d, want %d", got, want)
		}
	}
	for range 2 {
		if id, err := a.Next(); !errors.Is(err, ErrIDsExhausted) {
			t.Fatalf("Next at the end = %d, %v; want ErrIDsExhausted", id, err)
		}
	}
}

func TestAllocatorWriteFailureHandsOutNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	a := openAllocator(t, dir, 2)
	if got := next(t, a); got != 0 {
		t.Fatalf("Next = %d", got)
	}
	if got := next(t, a); got != 1 {
		t.Fatalf("Next = %d", got)
	}
	// The directory disappears: the next reservation cannot be written.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if id, err := a.Next(); err == nil {
			t.Fatalf("Next without a directory = %d, nil; want an error", id)
		}
	}
	if hw := a.HighWatermark(); hw != 2 {
		t.Fatalf("HighWatermark after failed reservations = %d, want 2", hw)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := next(t, a); got != 2 {
		t.Fatalf("Next after the directory is back = %d, want 2", got)
	}
	b := openAllocator(t, dir, 2)
	if got := next(t, b); got != 4 {
		t.Fatalf("Next after restart = %d, want 4", got)
	}
}

func TestOpenAllocatorRemovesTempFile(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, AllocatorFileName+tmpSuffix)
	if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := openAllocator(t, dir, 5)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file survived Open: %v", err)
	}
	if got := next(t, a); got != 0 {
		t.Fatalf("Next = %d, want 0", got)
	}
}
