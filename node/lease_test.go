package node

import "testing"

// The lease counts a heartbeat acknowledgement only once the local image has reached the
// controller's image at that moment; until then the previous, already covered grant keeps writes
// flowing, and a broker whose every grant expired (frozen past its session) leads nothing until
// it has seen what the controller saw.
func TestLeaseGrants(t *testing.T) {
	const sec = int64(1e9)
	var st *leaseState
	if st.valid(0, 100) {
		t.Fatal("no grant yet, lease valid")
	}
	// A grant at index 10, the image at 10: valid for its session.
	st = st.with(leaseGrant{until: 6 * sec, index: 10}, 10)
	if !st.valid(5*sec, 10) || st.valid(6*sec, 10) {
		t.Fatal("grant at the image's index: want valid before its end only")
	}
	// A newer grant at index 12 while the image is at 10: the held grant still covers writes,
	// the new one takes over once the image reaches 12.
	st = st.with(leaseGrant{until: 7 * sec, index: 12}, 10)
	if !st.valid(5*sec, 10) {
		t.Fatal("held grant dropped while the image catches up")
	}
	if st.valid(6*sec+1, 11) {
		t.Fatal("newer grant used before the image reached its index")
	}
	if !st.valid(6*sec+1, 12) {
		t.Fatal("newer grant not used once the image reached its index")
	}
	// Frozen past both grants, then acknowledged by a controller that moved on (index 20): no
	// write until the image shows index 20, whatever the clock says.
	st = st.with(leaseGrant{until: 20 * sec, index: 20}, 12)
	for _, applied := range []uint64{12, 19} {
		if st.valid(15*sec, applied) {
			t.Fatalf("zombie lease valid with the image at %d, before the controller's 20", applied)
		}
	}
	if !st.valid(15*sec, 20) {
		t.Fatal("lease not valid once the image caught up")
	}
	// The next acknowledgement promotes the grant the image has reached.
	st = st.with(leaseGrant{until: 21 * sec, index: 25}, 20)
	if st.held.index != 20 || len(st.pending) != 1 || !st.valid(20*sec-1, 20) {
		t.Fatalf("covered grant not promoted: %+v", *st)
	}
	// A lagging image: every acknowledgement is ahead of it when the next one arrives. The
	// reconciler promotes a grant when the image reaches it, so writes keep flowing as long as the
	// lag stays under the session.
	st = nil
	applied := uint64(0)
	for k := int64(1); k <= 20; k++ {
		sent := k * sec / 2
		st = st.with(leaseGrant{until: sent + 6*sec, index: uint64(k * 10)}, applied)
		applied = uint64(max(0, k*10-25)) // the image lags two acknowledgements behind
		st = st.promoted(applied)
		if k > 3 && !st.valid(sent+sec/4, applied) { // from k=4 the image covers the first grant
			t.Fatalf("heartbeat %d: lease lost while the image lags two acknowledgements: %+v", k, *st)
		}
	}
	if p := st.promoted(applied); p != st {
		t.Fatal("promotion without a change allocated a new state")
	}
	if len(st.pending) > maxPendingGrants {
		t.Fatalf("%d pending grants, bound %d", len(st.pending), maxPendingGrants)
	}
	// Grants that never get covered stay bounded.
	for k := range 100 {
		st = st.with(leaseGrant{until: int64(k) * sec, index: 1 << 40}, 0)
	}
	if len(st.pending) != maxPendingGrants {
		t.Fatalf("%d pending grants after 100 uncovered ones, want %d", len(st.pending), maxPendingGrants)
	}
}
