// Package controller holds the duties of the metadata raft leader (the
// controller): broker sessions and fencing, leader elections for
// partitions, controlled shutdown, preferred-leader rebalancing, and the
// RPC through which brokers reach it. Gossip suggests, raft decides:
// nothing here changes the cluster except by a committed meta command.
//
// # Core
//
// Core is pure and deterministic: no I/O, no goroutines, no clock (every
// method takes now), not safe for concurrent use. It keeps one session per
// broker registration and turns heartbeats, gossip verdicts and time into
// meta commands against the image it is given:
//
//   - Heartbeat renews the session of the current registration (now +
//     SessionTimeout) and grants a leader lease (Lease from now; the
//     broker counts it from its send time, so it ends first there), unless
//     the session has already run out. Another epoch gets
//     STALE_BROKER_EPOCH (77) and renews nothing: a restarted broker
//     registers anew (its epoch is the raft index of its RegisterBroker),
//     and requests of the previous run are zombies. A fenced broker whose MetadataOffset has reached its own
//     registration is unfenced (UnfenceBroker).
//   - MemberDead (gossip's dead verdict) ends a session now, or when the
//     last lease granted ends if that is later (BecameLeader assumes one
//     running to Lease + LeaseGrace for every broker); it proposes nothing
//     itself, and a heartbeat before the session has run out revives it
//     (after that, the heartbeat is answered fenced). No broker is ever
//     fenced while it may still hold a lease, so a frozen leader that wakes
//     has no lease left to write with.
//   - Tick fences (FenceBroker) every unfenced broker whose session expired
//     (now >= last heartbeat + SessionTimeout, and its lease is over);
//     meta.Apply's fence sweep then moves each partition it led to the
//     first unfenced ISR member with the leader epoch bumped and drops it
//     from ISRs (keeping a last member), so the core does not repeat that
//     work. Tick also elects a
//     leader for leaderless partitions from live ISR members; if none is
//     live the partition stays offline, unless unclean election is enabled
//     for the topic (Config.UncleanElection, by default the topic config
//     unclean.leader.election.enable=true): then the first live replica
//     in assignment order leads and the ISR becomes that replica alone.
//     Kafka prefers the live replica with the longest log; the controller
//     does not know log end offsets, so it takes assignment order and may
//     choose a replica that holds less than another. Every
//     PreferredLeaderInterval, leadership returns to a partition's first
//     replica where it is live and in the ISR. The commands of one Tick are
//     computed as if the earlier ones had committed; each is fenced by
//     broker or partition epochs, so a partly committed batch is harmless
//     and the next Tick repairs it.
//   - ReplicasOffline (a broker's report that some replicas' logs failed:
//     a disk error) takes those replicas out of their ISRs and moves their
//     leadership to another live ISR member; a partition whose only ISR
//     member failed loses its leader (the ISR keeps the member). The core
//     remembers them for the registration: they are not elected, moved back
//     to by the preferred-leader pass, or let back into an ISR by
//     AlterPartition until the broker registers again.
//   - ControlledShutdown (and a heartbeat with WantFence) marks the broker
//     as shutting down (never unfenced, never chosen as leader) and returns
//     ChangePartitions moving leadership to another live ISR member and
//     taking the broker out of ISRs; a partition with no other candidate
//     keeps it until it is fenced.
//   - BecameLeader starts a fresh session for every registered broker, so a
//     new controller fences nobody before brokers had SessionTimeout to
//     reach it.
//   - FilterAlterPartition is the controller's half of KIP-841: from a
//     leader's meta.AlterPartition it takes out every item that would add
//     to an ISR a broker in controlled shutdown or whose session has run
//     out (now >= its expiry, which MemberDead brings forward), returning
//     those items with errors wrapping meta.ErrIneligibleReplica. A member
//     counts as added unless the image's partition, at the item's epochs,
//     already lists it. Fenced and unregistered members, stale epochs and
//     the rest are meta.Apply's checks.
//
// "Live" means registered, unfenced, session running and not shutting down.
//
// # Server and Client
//
// Server owns a Core behind a mutex. Its Run goroutine watches the raft
// node: when the node becomes leader it commits a barrier entry (a
// FenceBroker of node -1, which every node rejects identically) so the
// image holds every earlier entry, calls BecameLeader, and then every
// TickInterval proposes Tick's commands one by one (each waits for its
// commit). RPCs are handled on the goroutine that calls Serve, one request
// at a time per connection; commands a request produces are committed
// before it is answered. A node that is not the leader (or has not passed
// its barrier) answers every request NOT_CONTROLLER (41) with the leader it
// knows. Register, Heartbeat and ControlledShutdown must name the node id
// the link authenticated (CLUSTER_AUTHORIZATION_FAILED otherwise). Register
// also adds a broker that is not yet in the raft configuration as a
// learner. ReplaceVoter checks that
// the replacement is a learner whose match index has reached the commit
// index. Close ends every Serve and cancels requests in flight.
//
// Propose forwards a command a broker sends, under these rules:
//
//   - RegisterBroker, FenceBroker and UnfenceBroker are refused
//     (ErrForbiddenCommand): they go through Register, Heartbeat and the
//     core's Tick.
//   - ChangePartition is refused (ErrForbiddenCommand): it can move a
//     leader, which only the controller's own rules do (elections, fencing,
//     controlled shutdown, preferred leaders), proposed by the Server itself
//     and never through Propose. Brokers change ISRs with AlterPartition.
//   - AlterPartition must name the link's node as ProposerID
//     (ErrPeerMismatch). The Server runs Core.FilterAlterPartition on it
//     (under its mutex, at the current image and time) and proposes what
//     is left, even if no item is; the answer lists the items taken out,
//     then those meta.Apply refused, each with its code and message. A
//     proposer that is unknown, stale (meta.ErrStaleBrokerEpoch) or fenced
//     (meta.ErrFencedBroker) fails the whole command. The filter and the
//     commit are not atomic: a broker that enters controlled shutdown in
//     between can still be added once, and the shutdown's moves, which
//     every Tick repeats while it lasts, take it out again.
//   - CreateTopic, DeleteTopic, CreatePartitions and AllocateProducerIDs
//     are proposed as they are.
//
// Client routes each call to the node named by the last NOT_CONTROLLER
// answer, else to the local raft node's leader, follows redirects, and
// retries with backoff (RetryBackoffMin doubling to RetryBackoffMax) over a
// fresh connection after an error, until ctx ends. Concurrent calls use
// separate connections; idle ones are pooled per node. Client.AlterPartition
// returns the command's index and its rejected items (each an *Error); the
// other items hold in the image at that index. A retry after a lost answer
// may commit the command twice: the second time its items come back stale
// or change nothing, so a caller trusts its image at the index.
//
// # Wire format (link purpose 'C')
//
// All integers big-endian; strings and byte strings are u32 length + bytes;
// lists are u32 count + items.
//
//	frame     length u32 (2..MaxMessageSize, checked before allocating) | body
//	request   version u8 (=4) | kind u8 | fields
//	response  version u8 (=4) | kind u8 | code i16 | controller i32 | message str | fields
//
//	kind 1 Register            RegisterBroker command bytes (meta.EncodeCommand)
//	                           -> broker epoch i64
//	kind 2 Heartbeat           node i32 | broker epoch i64 | want fence u8 | metadata offset u64
//	                           -> fenced u8 | should shutdown u8 | controller's image index u64 |
//	                              lease i64 (nanoseconds)
//	kind 3 ControlledShutdown  node i32 | broker epoch i64 -> (nothing)
//	kind 4 Propose             command bytes (meta.EncodeCommand)
//	                           -> index u64 | has block u8 [| node i32 | epoch i64 | first i64 | count i64] |
//	                              rejected u32 × (topic id [16] | partition i32 | code i16 | message str)
//	kind 5 ReplaceVoter        dead i32 | replacement i32 -> (nothing)
//	kind 6 Status              (nothing) -> leader i32 | term u64 | voters [i32] | learners [i32] | applied u64
//	kind 7 ReplicasOffline     node i32 | broker epoch i64 | [topic id [16] | partition i32] -> (nothing)
//
// The response fields are present whatever the code (zero when it is not
// 0); a Propose the state machine rejected carries its index. Rejected
// lists the AlterPartition items that were not applied (empty for other
// commands and when the code is not 0). Each message is cut to 256 bytes
// and all of them to 4 KiB, as an error message is; past that, items carry
// their codes alone (26 bytes, less than the item took in the request).
// Version 3 added Rejected; a peer of another version is answered nothing
// (the connection closes). Codes are
// Kafka's (package wire); Error.Is maps them back to the sentinels of meta
// and of this package. A malformed request closes the connection.
package controller
