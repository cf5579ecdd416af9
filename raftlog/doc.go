// Package raftlog is the metadata plane's storage: the durable raft log
// behind go.etcd.io/raft/v3 (this file) and, in subpackages, its write-ahead
// log (wal) and the deterministic metadata state machine (meta).
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
package raftlog
