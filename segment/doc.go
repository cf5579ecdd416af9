// Package segment is a partition's log: a directory of segment files
// holding Kafka RecordBatch v2 bytes exactly as they travel on the wire,
// with sparse indexes, a leader-epoch cache, crash recovery, retention and
// file-range reads for sendfile.
//
// # Files
//
// A partition directory holds, per segment (base offset as 20 digits):
//
//	00000000000000001234.log        batches, byte-identical to the wire
//	00000000000000001234.index      sparse offset index (sealed segments, and the active one after Close)
//	00000000000000001234.timeindex  sparse time index (same)
//
// and per partition:
//
//	leader-epoch-checkpoint            "0\n<n>\n<epoch> <startOffset>\n..."
//	recovery-point-offset-checkpoint   "0\n<offset>\n": everything below is synced
//	log-start-offset-checkpoint        "0\n<offset>\n"
//	high-watermark-checkpoint          "0\n<offset>\n": last high watermark the broker checkpointed
//
// Checkpoints are replaced atomically (write *.tmp, fsync, rename, fsync
// the directory). Files ending in .tmp or .deleted are removed by Open.
//
// The log start offset need not be a segment or batch boundary: a follower
// follows the leader's (AdvanceLogStart). Read and ScanHeaders then start
// at the batch holding it, reads below it give ErrOffsetOutOfRange, and
// OffsetForTimestamp answers only with offsets at or above it. Segments
// that lie wholly below it are deleted (AdvanceLogStart, and retention for
// any a crash left behind).
//
// The high-watermark checkpoint is written only by CheckpointHighWatermark
// (skipped when unchanged) and by truncations that cut below it (TruncateTo
// lowers it to the new log end, TruncateFullyAndStartAt sets it to the new
// start). HighWatermarkCheckpoint returns it clamped to [log start, log
// end], so a tail lost at a crash never leaves it above the log end; a
// missing or malformed file reads as the log start.
//
// # RecordBatch v2 header (big-endian)
//
//	 0 baseOffset int64            <- stamped by the leader, outside the CRC
//	 8 batchLength int32           (bytes after this field: size - 12)
//	12 partitionLeaderEpoch int32  <- stamped by the leader, outside the CRC
//	16 magic int8 (2)
//	17 crc uint32                  CRC-32C (Castagnoli) of bytes 21..end
//	21 attributes int16            codec bits 0-2, 3 LogAppendTime, 4 transactional, 5 control
//	23 lastOffsetDelta int32
//	27 baseTimestamp int64
//	35 maxTimestamp int64
//	43 producerId int64
//	51 producerEpoch int16
//	53 baseSequence int32
//	57 numRecords int32
//	61 records...
//
// Append validates length, size limit, magic, CRC, codec, count and
// lastOffsetDelta, then writes baseOffset and partitionLeaderEpoch into the
// caller's buffer. Both sit outside the CRC, so nothing is recomputed.
// AppendReplica (and AppendReplicaPending) stores the leader's bytes
// verbatim.
//
// # Index files
//
// Offset index entries map a batch's base offset to its file position, one
// entry at the first batch after every IndexIntervalBytes; time index
// entries record (maxTimestamp, base offset) whenever a batch raises the
// segment's maximum timestamp and the interval has passed. Both files end
// with a 40-byte trailer (log size, next offset, max timestamp and its
// offset, CRC-32C, magic) that ties them to one exact state of their log;
// see index.go. Only sealed segments (and the active one after a clean
// Close) have index files; the active segment's indexes live in memory.
//
// # Timestamp lookups
//
// OffsetForTimestamp answers as Kafka does: the first record, in offset
// order, whose timestamp (base timestamp + timestampDelta) is >= the
// target. The time index and a header scan find the first batch whose max
// timestamp qualifies; the lookup then walks that batch's records — length
// varint, attributes int8, timestampDelta varlong, offsetDelta varint, the
// rest skipped by the length — streamed from the file through the batch's
// codec (gzip; snappy as one raw block or xerial-framed: magic
// 82 'SNAPPY' 00, two int32 versions, then int32-length-prefixed blocks;
// lz4 frames; zstd). This is the only place the package decodes records;
// it reads at most 64 MiB of decompressed records per lookup. It falls back
// to the batch's base offset and max timestamp (batch granularity) for
// LogAppendTime batches, where every record carries the max timestamp, and
// for any record bytes that do not decode or exceed the bound.
//
// # Goroutines and locking
//
// A Log has one writer at a time: Append, AppendPending,
// AppendCheckedPending, AppendReplica, AppendReplicaPending, AssignEpoch,
// TruncateTo, TruncateFullyAndStartAt, EnforceRetention,
// EnforceRetentionBelow, AdvanceLogStart, CheckpointHighWatermark and
// Flush serialise on an internal mutex (the *Pending appends release it
// before returning; Pending.Wait never holds it). Readers (Read,
// ScanHeaders, OffsetForTimestamp and the accessors, HighWatermarkCheckpoint
// among them) never take it. They load:
//
//   - the log end offset (atomic), then
//   - an immutable, base-ordered list of segments (atomic pointer), then
//   - per segment: a published size and next offset (atomics) and
//     append-only index lists (a published length over an array that is
//     only ever appended to or copied into a bigger one).
//
// The writer writes batch bytes with pwrite beyond the published size,
// updates the index lists, and only then stores the segment size and the
// log end offset. A reader never looks past a published size, so it sees
// all batches of an Append call or none. Roll publishes the new list before
// the first write into the new segment, which is why readers load the log
// end offset before the list.
//
// One goroutine per Log, started by Open and stopped by Close, syncs rolled
// segments (so the recovery point advances for every policy) and runs the
// periodic sync of DurabilityInterval.
//
// # Pins: views, retention and truncation
//
// Read returns a View of file ranges (the segment's *os.File, position,
// length), always whole batches. The View pins every segment it names: a
// reference count, with a "dead" bit that forbids new pins. While pinned, a
// segment's file is neither closed, removed nor truncated, so a sendfile or
// pread of a range never meets a reused descriptor, a deleted file or a
// short file. Release the View when the bytes are sent; Release is
// idempotent.
//
// Retention, AdvanceLogStart and full truncation retire whole segments:
// store the new log start (when it moves), publish a list without them,
// rename their files to *.deleted (so a restart ignores them), set the
// dead bit. The last Release (or the retirement itself when
// nothing is pinned) closes the descriptor and removes the files. Retention
// never waits for readers.
//
// TruncateTo cuts inside a segment. A pinned range that ends at or below
// the cut point would survive an ftruncate unharmed; a range that reaches
// past it would turn into a short read. The log does not track range ends
// per pin, so it is conservative: it builds a new segment value over the
// same file for the surviving prefix (with copies of the index prefixes),
// stores the new log end offset, publishes a list holding the new value,
// marks the old value dead, waits - holding the writer lock - until every
// pin on the old value is released, and only then truncates and syncs the
// file. Readers that pin the new value can only see bytes below the cut;
// readers still holding the old list clamp to the new, lower log end. A
// goroutine must therefore not hold a View while it calls TruncateTo, and
// a View held for a long time delays a truncation (not retention, reads or
// other partitions).
//
// # Durability
//
// DurabilityNever leaves data in the page cache (Kafka's default: replicas
// provide durability). DurabilityInterval fdatasyncs dirty segments every
// FlushInterval. DurabilityAlways returns from Append only after an
// fdatasync that covers it; concurrent appenders share fdatasyncs (group
// commit, see groupcommit.go). AppendPending and AppendReplicaPending
// return once the batches are written and visible to readers bounded by
// the log end; their Pending.Wait is that fdatasync, so a follower appending
// one fetch response to many partitions waits on all of them together and
// their fdatasyncs run concurrently. A failed write is cut back and leaves the
// log unchanged; a failed fdatasync fails the log (ErrFailed) until it is
// reopened, since the page cache state is then unknown. docs/storage.md
// states what each policy promises after a power loss.
//
// # Recovery
//
// Open walks the segments in order. A segment is trusted when its index
// files pass their checks (trailer CRC, log size and next offset equal to
// the log's, entries in order, first/last entries and the tail of the log
// where the index says) and it lies wholly below the recovery point.
// Otherwise it and every later segment are re-validated batch by batch
// (framing, CRC, fields, offsets contiguous from the segment's base); at
// the first torn or corrupt batch the file is truncated and all later
// segments are removed, as they are when a segment does not start where
// the previous one ends (the log never keeps a hole). Indexes are rebuilt during the scan. Leader epochs
// found in re-validated batches extend the epoch cache, which is then cut
// to the log end. Reads re-check each batch's base offset against the index
// entry or previous batch they came from, so even an index that passed the
// open-time checks cannot make a read return wrong bytes (it returns
// ErrCorrupt instead).
//
// # Errors
//
// Bad input returns a sentinel (wrapped with context) and leaves the log
// unchanged: ErrCorrupt (CORRUPT_MESSAGE), ErrInvalidRecord
// (INVALID_RECORD), ErrUnsupportedMagic (UNSUPPORTED_VERSION), ErrTooLarge
// (MESSAGE_TOO_LARGE), ErrUnsupportedCodec (UNSUPPORTED_COMPRESSION_TYPE),
// ErrOffsetOutOfRange (OFFSET_OUT_OF_RANGE), ErrStaleEpoch
// (FENCED_LEADER_EPOCH), ErrNonMonotonic, ErrClosed, ErrFailed.
package segment
