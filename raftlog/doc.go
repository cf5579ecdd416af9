// Package raftlog is the metadata plane: the durable raft log behind
// go.etcd.io/raft/v3 (Storage), the raft driver (Node), the transport of
// raft messages between brokers (Transport), the metadata state machine
// adapter (MetaMachine) and, in subpackages, the write-ahead log (wal) and
// the deterministic metadata state machine itself (meta).
//
// # Storage and the Ready contract
//
// Storage implements raft.Storage over a raft.MemoryStorage that OpenStorage
// rebuilds from disk. The data directory holds
//
//	<dir>/wal/<seq>.wal                   records: entries, HardStates, snapshot markers
//	<dir>/snap/<index>-<term>.snap        snapshot files (one CRC-framed record each)
//
// The raft loop, which owns the Storage's writing methods, handles each
// Ready in this order:
//
//  1. Save(rd.HardState, rd.Entries, rd.Snapshot): returns after fsync.
//     Entries replace any stored suffix from their first index on.
//  2. Send rd.Messages (never before step 1 returned nil).
//  3. Apply rd.Snapshot, then rd.CommittedEntries in order, to the state
//     machine (meta.Apply on the image), ApplyConfChange for conf changes.
//  4. If ShouldSnapshot(applied): CreateSnapshot(applied, confState,
//     meta.EncodeImage(image)), then Compact(applied).
//  5. Advance.
//
// On restart the loop opens the Storage, decodes the snapshot's data into
// the image, and passes the snapshot index as raft.Config.Applied; raft then
// re-delivers the committed entries after it.
//
// # Snapshots and log release
//
// A snapshot is durable in two steps: its file is written (temporary file,
// fsync, rename, directory fsync), then a WAL checkpoint is written holding
// a snapshot marker for it, the HardState and the entries after it; the
// checkpoint replaces every older segment (see package wal). On open, the
// last marker names the live snapshot; snapshot files newer than it (whose
// checkpoint never landed) are deleted, and KeepSnapshots files at or below
// it are kept. A snapshot received from the leader (Ready.Snapshot) takes
// the same path but restarts the log at the snapshot, discarding local
// entries, as raft.MemoryStorage.ApplySnapshot does. Compact only trims
// memory, and never past the live snapshot, so raft can always serve a
// lagging follower with either entries or the snapshot.
//
// Every write fsyncs, so a whole-cluster restart loses no acknowledged
// entry. The raft.Storage read methods are safe for concurrent use; Save,
// CreateSnapshot, Compact and Close belong to the raft loop.
//
// # Replacing a dead voter
//
// Voters are fixed at bootstrap. To replace a dead voter, add the new node
// as a learner (AddLearner), wait until it has caught up (its Progress.Match
// reaches the leader's commit), then propose ReplaceVoter(dead, new): one
// joint-consensus ConfChangeV2 that promotes the learner and removes the
// dead voter atomically, so the voter count never dips.
//
// # Node: the raft driver
//
// Node owns one raft.RawNode. Its Run goroutine is the only one that
// touches the RawNode, the Storage's writing methods and the StateMachine;
// everything else reaches it through channels (proposals, received
// messages, status requests, transport reports) or reads what it publishes
// atomically (LeaderID, IsLeader, Term, AppliedIndex, ConfState, and the
// LeaderChanged and WaitApplied broadcasts). Run ticks every TickInterval,
// steps incoming messages (up to 256 events per Ready), and handles every
// Ready in the order above:
//
//  1. Save, fsynced. A vote or append acknowledgement that left the node
//     before its fsync could be forgotten by a crash, letting a node vote
//     twice in a term or a leader count an entry as replicated that no
//     disk holds. Nothing is sent before Save returns; a failed Save stops
//     Run with an error (the durable state is intact; restart the node).
//  2. Transport.Send(rd.Messages), which never blocks.
//  3. A received snapshot is restored into the StateMachine, then the
//     committed entries are applied strictly in index order; conf changes
//     go to RawNode.ApplyConfChange (an invalid one, on which raft would
//     panic, is skipped identically by every node and reported to its
//     proposer as ErrConfChange).
//  4. Every SnapshotEntries applied entries, and after every conf change
//     once a snapshot exists, the StateMachine's Snapshot is stored by
//     CreateSnapshot and the log compacted to CatchUpEntries before it.
//     The snapshot after a conf change matters: a lagging peer is sent the
//     latest stored snapshot, and a learner ignores one whose ConfState
//     does not list it.
//  5. Advance; Readies produced by Advance itself (messages to self such
//     as the leader's own append acknowledgement) are handled at once.
//
// On start, NewNode restores the StateMachine from the stored snapshot and
// raft re-delivers the committed entries after it, so a whole-cluster
// restart comes back to the same state and applied index. An empty storage
// is bootstrapped with InitialVoters if the node is one of them; a sole
// voter campaigns at once instead of waiting for an election timeout.
//
// # Proposals
//
// Propose(ctx, data) answers a *NotLeaderError (errors.Is ErrNotLeader,
// naming the known leader) on a follower or learner: raft's own proposal
// forwarding is off, callers forward. On the leader the data travels in an
// envelope (version, origin node id, a boot nonce drawn by NewNode, a
// sequence number; 25 bytes, see proposal.go) and the proposal waits,
// keyed by that request id, for the entry to be applied locally; it then
// returns the entry's index and the StateMachine's result. Indexes are
// unknown at proposal time, but the next Ready's Entries carry the new
// entry (raft appends the leader's proposals synchronously): its index is
// noted then, and a proposal absent from that Ready was refused by raft
// (ErrProposalDropped). If the entry applied at a noted index carries
// another request id, a new leader overwrote it (ErrProposalDropped); if a
// snapshot from the leader covers it, its fate is unknown here
// (ErrProposalUnknown). An entry that survives a leader change still
// completes its proposal. Conf changes carry the same header in
// ConfChangeV2.Context. The boot nonce keeps a restarted node from taking
// an entry of its previous run for one of its new proposals.
//
// # Transport
//
// Raft messages travel over internal link connections with purpose 'R',
// authenticated by the cluster secret (package internal/link); a peer
// without the secret never gets past the handshake and is logged by the
// listener. Each connection carries messages one way, as frames
//
//	length u32 big endian | protobuf raftpb.Message
//
// The length is checked against TransportConfig.MaxFrameSize (default
// 256 MiB) before any allocation, and bodies above 1 MiB are read in
// growing chunks, so a false length costs nothing. Outbound, each peer has
// a goroutine and a bounded queue (QueueSize): Send never blocks; a full
// queue drops the message (raft retransmits) and reports the peer
// unreachable. The goroutine dials the address from the Peers resolver,
// checks that the authenticated peer id is the one wanted, writes batches
// with a write deadline, and redials with backoff (BackoffMin doubling to
// BackoffMax) after a failure, dropping queued messages meanwhile. Failed
// dials and lost connections are reported with ReportUnreachable; a
// snapshot message is reported SnapshotFinish once written and flushed,
// SnapshotFailure if it is dropped. Inbound, the node's internal listener
// demultiplexes by purpose and hands raft connections to Node.Serve /
// Transport.Serve, which checks that every message comes From the
// authenticated peer and is addressed To this node (otherwise the
// connection is closed and counted in Stats.Rejected) and feeds the raft
// goroutine, blocking (back-pressure) rather than dropping.
//
// # Learners and voters
//
// The voter set is fixed at bootstrap by InitialVoters (default 3 brokers;
// 1 for a single node). Every other broker starts with an empty storage,
// does not bootstrap, and waits: when it registers, the leader calls
// AddLearner(ctx, id), and the new learner receives the log, or the
// leader's latest snapshot if the log was compacted. Learners never vote
// or campaign and answer proposals with ErrNotLeader. To replace a dead
// voter, add its replacement as a learner, wait until it has caught up,
// then call ReplaceVoter(ctx, dead, replacement) on the leader (see above).
//
// # Metadata state machine
//
// MetaMachine applies meta commands (ProposeCommand encodes one, proposes
// it and unwraps its MetaResult). Its current *meta.Image sits in an
// atomic pointer: Image() never locks and returns an immutable image.
// Each change is published to every MetaSubscription without blocking the
// raft goroutine: the subscription keeps the newest image and appends the
// change's Delta, and its reader takes everything pending at once. A
// reader sees every delta in log order; when it cannot (the first read, a
// snapshot restored from the leader, or more than MaxPendingDeltas queued)
// the update says Reset, and the reader reconciles against the full image
// it carries. No delta is ever lost silently.
package raftlog
