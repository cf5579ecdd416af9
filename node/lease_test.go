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
	if st.held.index != 20 || !st.valid(20*sec-1, 20) {
		t.Fatalf("covered grant not promoted: %+v", *st)
	}
}
