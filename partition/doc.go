// Package partition is one partition replica hosted by a broker: its log (package segment), the
// leader's append path with the idempotent-producer checks (internal/producerstate), the shell that
// drives the replication core (replica.Core), the follower side that the replica fetchers write
// through (follower.Replica), and the state kept beside the log (producer-state snapshots, the
// high-watermark checkpoint).
//
// Package node does the wiring: it opens and deletes replicas as the metadata image says, gives
// them their role, parses topic configs (of which a Replica receives only its segment.Config; node
// decides min.insync.replicas and passes it to CheckMinISR and AddWait), maps errors to Kafka
// codes, runs the timers and turns what a Replica exposes into metrics. This package opens no
// socket and imports neither node nor Prometheus.
//
// # Goroutines
//
// A Replica starts no goroutine and is safe for concurrent use. Its callers:
//
//	connection handlers    Produce, CheckMinISR, AddWait, CancelWait, WaitDurable, FollowerFetch (a
//	                       follower's Fetch on the leader), and the lock-free reads HighWatermark,
//	                       Role, Log, Signal
//	metadata reconciler    Open, BecomeLeader, BecomeFollower, UpdateISR, Close, Delete: the only
//	                       caller that changes the role, one call at a time
//	broker timers          Tick (led replicas), CheckpointHW, Snapshot, retention through Log
//	the ISR proposer       ProposalDone, after the controller answered (see ISRProposer)
//	replica fetchers       FetchPosition, Diverged, OutOfRange, Append, Fetched (follower.Replica)
//
// # Locks
//
// Three mutexes, always taken in this order: mu, then rmu; mu, then snapMu. rmu and snapMu are
// never held together.
//
//	mu      the writer lock: the producer state, closed, and leadership changes. Held by Produce
//	        (check, append, update), BecomeLeader, BecomeFollower, Close, Delete and the follower
//	        side's Append, Diverged and OutOfRange (truncation). Released before an append's
//	        durability wait. Readers never take it.
//	rmu     the core (replica.Core) and the acks=all waits. Never held across disk or network I/O;
//	        ISRProposer.Propose is called under it and must not block.
//	snapMu  producer-state snapshot files (Snapshot, Close, the rebuild after a truncation).
//
// The role is an atomic pointer, read without locks. BecomeLeader (only after the log recorded the
// new epoch with segment.Log.AssignEpoch) and BecomeFollower write it under mu, so Produce and the
// follower side, which re-check it under mu, never act on a stale leadership; UpdateISR changes only
// its partition epoch. The high watermark is an atomic written under rmu.
//
// # What is durable when
//
// An append returns once the log's durability policy (segment.Config.Durability, the topic's
// sluice.durability) is met:
//
//	never     (default, like Kafka) written to the page cache; survives a process crash, not a
//	          machine crash
//	interval  additionally fsynced every Log.FlushInterval
//	always    fsynced (group commit) before Produce returns
//
// Produce releases mu before it waits for durability, so under always concurrent producers to one
// partition share one fdatasync. The core hears an append's end only once it is durable, so under
// always the leader counts only synced data toward the high watermark; BecomeLeader flushes a
// follower's pending appends first for the same reason.
//
// The high watermark is the minimum log end offset over the ISR (Kafka's rule, as package replica
// applies it); a follower's is min(leader's high watermark, its own log end). It is checkpointed to
// <dir>/high-watermark-checkpoint by CheckpointHW (the broker calls it periodically) and by Close,
// and Open starts from that checkpoint, never from the log end, so a restart never jumps it forward.
// acks=all waits (AddWait) complete once the high watermark passes their batch, i.e. once every ISR
// member has fetched it.
//
// # Producer state
//
// Idempotent-producer state is kept in memory (guarded by mu): checked before the leader's append,
// updated after it; a retried batch still retained is not appended again and gets its original
// offsets (ProduceResult.Duplicate). The follower side updates it from the replicated batches, so a
// producer retrying after a failover is answered as a duplicate. Snapshot and Close save it to
// <dir>/<offset, 20 digits>.snapshot (the log end it covers); Open, and a follower's truncation,
// rebuild it from the newest snapshot at or below the log end plus the batch headers after it.
//
// # Wake-ups
//
// Signal is notified after the high watermark advances, after every durable leader append
// (followers read up to the log end), on BecomeLeader and BecomeFollower, and at Close or Delete.
// Long-polling fetches wait on it and re-check afterwards (see fetch.Signal for the order that
// loses no wake-up).
//
// # Failed logs
//
// A log operation that fails on the file system (segment.ErrFailed, or an *fs.PathError such as EIO
// or ENOSPC) takes the replica offline for good (Offline): it stops leading (acks=all waits fail
// with ErrNotLeader), refuses BecomeLeader (ErrOffline) and Config.OnOffline is called once, with
// no lock held, so the broker can stop fetching it and report it to the controller. Only a restart,
// which reopens and recovers the log, brings it back.
//
// # Errors
//
// ErrNotLeader, ErrClosed, ErrOffline, ErrRequestTimedOut and the leader-epoch fencing errors of
// CheckLeaderEpoch are this package's; the core's (replica.ErrNotEnoughReplicas, ...), segment's and
// producerstate's errors pass through, and the follower side answers follower.ErrStale when the
// replica no longer follows in the fetcher's epoch. Package node maps them to Kafka codes.
package partition
