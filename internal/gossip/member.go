package gossip

import "fmt"

// State is how this node currently sees a member.
type State uint8

// Member states; see doc.go for what each one means and who decides it.
const (
	StateAlive   State = iota + 1 // memberlist counts it as a live member
	StateSuspect                  // alive to memberlist, but our direct pings fail
	StateDead                     // memberlist declared it failed
	StateLeft                     // it announced a graceful leave
)

// String returns the lower-case name used in logs.
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Member is one broker as this node sees it.
type Member struct {
	Meta  NodeMeta
	State State
	// Addr is the member's gossip address (host:port).
	Addr string
}

// Stats is a snapshot of a Membership's counters.
type Stats struct {
	Alive, Suspect, Dead, Left int
	// DroppedEvents counts OnChange events dropped because
	// MaxPendingEvents were already queued.
	DroppedEvents uint64
	// RejectedMeta counts alive messages refused because their meta did not
	// decode or did not match the node name.
	RejectedMeta uint64
}
