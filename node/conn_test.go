package node

import "testing"

func TestByteBudget(t *testing.T) {
	open := make(chan struct{})
	closed := make(chan struct{})
	close(closed)
	b := byteBudget{avail: 100}
	// acquire with a closed done channel returns false exactly when it would have to wait.
	if !b.acquire(60, open) {
		t.Fatal("first 60 refused")
	}
	if b.acquire(60, closed) {
		t.Fatal("60 more admitted over a 100-byte budget")
	}
	if !b.acquire(40, closed) {
		t.Fatal("40 refused with 40 left")
	}
	b.release(60)
	if b.acquire(500, closed) {
		t.Fatal("oversized frame admitted while another is outstanding")
	}
	b.release(40)
	if !b.acquire(500, closed) {
		t.Fatal("oversized frame refused with nothing outstanding")
	}
	if b.acquire(1, closed) {
		t.Fatal("admitted while an oversized frame is outstanding")
	}
	b.release(500)
	if b.avail != 100 || b.total != 0 {
		t.Fatalf("budget not restored: avail %d total %d", b.avail, b.total)
	}
}

func TestFramePool(t *testing.T) {
	var p framePool
	for _, size := range []int{0, 1, 1024, 1025, 64 << 10, 1 << 20} {
		b := p.get(size)
		if b == nil || cap(*b) < size || cap(*b) > max(2*size, 1024) {
			t.Fatalf("get(%d): cap %d", size, cap(*b))
		}
		p.put(b)
	}
	if b := p.get(1<<20 + 1); b != nil {
		t.Fatalf("get above the largest class returned a buffer of %d", cap(*b))
	}
	odd := make([]byte, 3000)
	p.put(&odd) // not a class size: dropped, not reused
	if b := p.get(3000); cap(*b) != 4096 {
		t.Fatalf("get(3000) returned cap %d", cap(*b))
	}
}
