// Package wal is the write-ahead log under the raft metadata storage: an
// append-only sequence of CRC-framed records in numbered segment files.
//
// # Record layout
//
//	0        4        8    9
//	+--------+--------+----+----------------------+
//	| length | crc32c | ty | payload (length-1 B) |
//	+--------+--------+----+----------------------+
//
// length (little endian u32) counts the type byte and the payload; crc is
// CRC-32C (Castagnoli) over the type byte and the payload. A length of 0 or
// above Config.MaxRecordBytes is corruption, so a damaged header never makes
// the reader allocate. Record types: TypeEntry (a raft entry: term u64,
// index u64, entry type u8, data), TypeHardState (term, vote, commit u64),
// TypeSnapshot (snapshot marker: index, term u64), plus an internal reset
// record that starts a checkpoint segment. TypeSnapshotFile frames the body
// of a snapshot file (see package raftlog) and never appears in a segment.
//
// # Segments and durability
//
// Segments are named <seq %016x>.wal. Append only buffers; Sync writes the
// buffered records to the last segment and fsyncs it: when Sync returns nil,
// every appended record is durable. A batch never spans segments; a new
// segment is created (and the directory fsynced) when a batch would take the
// current one past Config.SegmentBytes. A failed write or fsync is sticky.
//
// Checkpoint writes a new segment (reset record + the records given) to a
// temporary file, fsyncs it, renames it into place, fsyncs the directory,
// and deletes all earlier segments. Open treats the last segment that starts
// with a reset record as the start of the log and removes earlier ones, so
// a crash at any point leaves either the old log or the checkpoint.
//
// # Recovery
//
// Open replays every record of the live segments in order. In the last
// segment the first torn or corrupt record ends the log: the file is
// truncated there (a crash mid-write leaves such a tail; everything before
// it was fsynced). The same in a sealed segment is an error wrapping
// ErrCorrupt, since sealed segments were fully synced before their successor
// existed.
//
// A WAL is owned by one goroutine; it is not safe for concurrent use.
package wal
