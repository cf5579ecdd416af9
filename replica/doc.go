// Package replica holds the replication rules of one partition replica as a
// pure state machine: Kafka's ISR protocol (high watermark, acks=all waits,
// ISR shrink and expand, follower progress, divergence by leader epoch).
//
// # Purity
//
// Core performs no I/O, starts no goroutine, reads no clock and is not safe
// for concurrent use: the time is an argument, the log is described by the
// offsets its owner passes in, and every decision comes back as a value (a
// Ready, a FetchDecision, a truncation offset). Its owner (the broker's
// partition shell, or the deterministic simulator in this package's tests)
// serialises calls, does the I/O the outputs ask for and feeds the results
// back. This is how controller.Core and meta.Apply work, and for the same
// reason: the rules can be run under a seeded simulator, thousands of
// schedules a second, with invariants checked after every step.
//
// # Leader
//
// A leader tracks its log end offset (LEO; under durability=always the
// durable end, since the owner reports an append only once its fdatasync
// returned), the high watermark (HW), the committed ISR, at most one ISR
// change in flight, and per follower its LEO (the fetch offset of its last
// fetch: a follower's next fetch offset is its acknowledgement) and the last
// time it was caught up.
//
//   - HW = min LEO over the maximal ISR: the committed ISR plus a member an
//     in-flight change adds, still counting a member an in-flight change
//     removes (KIP-497). It only moves forward. On becoming leader every
//     follower's LEO is unknown, so HW stays where it was until each ISR
//     member has fetched in the new epoch.
//   - A follower is caught up at a fetch whose offset reaches the leader's
//     LEO, or the LEO the leader had at the follower's previous fetch (so a
//     steady stream of appends does not make a keeping-up follower look
//     behind). It falls out of sync when its LEO is below the leader's and
//     it has not been caught up for LagTime (replica.lag.time.max.ms).
//   - Tick proposes a shrink for out-of-sync members; a fetch that brings a
//     non-member to the HW and to the start offset of the current leader
//     epoch proposes an expand. One change is in flight at a time; it
//     counts only once the metadata image shows it (Update), and a change the
//     controller refused is dropped by ProposalDone and proposed again later.
//   - acks=all: AddWait registers a produce that needs HW > its last
//     offset. It completes when the HW passes it, with
//     ErrNotEnoughReplicasAfterAppend if the committed ISR is then smaller
//     than the wait's min.insync.replicas, and with ErrNotLeader when the
//     replica stops leading. CheckMinISR is the before-append check
//     (ErrNotEnoughReplicas).
//
// # Follower
//
// A follower's HW is min(leader's HW, its own LEO). When the leader answers
// a fetch with a diverging epoch (E, end), TruncationOffset says where to cut:
// min(end, the follower's own end offset for E), never the HW; the next fetch
// checks again, so several rounds may be needed when the follower does not
// know E.
package replica
