package raftlog

// StateMachine is the replicated state a Node applies committed entries
// to. Every method is called from the Node's raft goroutine only, in log
// order; implementations publish their state to other goroutines
// themselves (MetaMachine does so with an atomic pointer).
type StateMachine interface {
	// Apply applies the data of the normal entry at index (the bytes a
	// Propose call passed, on whichever node proposed it) and returns the
	// result handed to that Propose call. It must be deterministic: every
	// node applies the same entries and must reach the same state. A
	// command the state machine rejects is reported in the result, not by
	// stopping: the entry is committed either way.
	Apply(index uint64, data []byte) any
	// Snapshot returns the encoded state as of the last applied entry.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's data, taken at index.
	// An error stops the Node: it cannot apply entries after the snapshot.
	Restore(data []byte, index uint64) error
}
