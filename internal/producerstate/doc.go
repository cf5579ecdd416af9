// Package producerstate keeps the idempotent-producer state of one partition,
// as Kafka's ProducerStateManager does, and persists it in snapshot files.
//
// Idempotence is on by default in Kafka clients (KIP-679, Kafka 3.0; franz-go
// kgo always uses it unless disabled), so every produce request from them
// carries a producer id, an epoch and a base sequence in its RecordBatch v2
// header (KIP-98). The broker must accept exactly what Kafka accepts.
//
// # Rules (State.Check)
//
// Mirrors UnifiedLog.analyzeAndValidateProducerState, ProducerAppendInfo
// (checkProducerEpoch, checkSequence, inSequence) and ProducerStateEntry
// (findDuplicateBatch, NUM_BATCHES_TO_RETAIN = 5), in this order:
//
//  1. ProducerID < 0: not idempotent, nothing to check or record.
//  2. BaseSequence < 0 with a producer id: ErrInvalidSequence. Kafka's
//     LogValidator rejects this before the producer state is consulted,
//     INVALID_RECORD (87).
//  3. Duplicate: same epoch as the producer's current one and exactly the
//     (BaseSequence, LastSequence) range of one of its last 5 appended
//     batches. Check returns that batch as *Duplicate and no error.
//  4. Epoch below the producer's current epoch: ErrInvalidProducerEpoch,
//     INVALID_PRODUCER_EPOCH (47). Since Kafka 2.7 this replaced
//     PRODUCER_FENCED in produce responses, so clients abort and retry.
//  5. Epoch different from (above) the current one: the producer bumped its
//     epoch and must restart at sequence 0, else ErrOutOfOrderSequence,
//     OUT_OF_ORDER_SEQUENCE_NUMBER (45).
//  6. Producer unknown (never seen, expired, or its batches truncated away):
//     any epoch and any sequence is accepted. Before KIP-360 (Kafka 2.5) the
//     broker answered UNKNOWN_PRODUCER_ID here; current Kafka does not, and
//     neither does Sluice. Likewise a producer recorded with epoch -1 accepts
//     any sequence.
//  7. Same epoch: BaseSequence must be the last retained batch's
//     LastSequence + 1, where MaxInt32 is followed by 0, else
//     ErrOutOfOrderSequence. A retry of a batch older than the last 5 is
//     therefore out of order, never a duplicate.
//
// Sequences wrap: LastSequence = BaseSequence + LastOffsetDelta, past
// MaxInt32 continuing at 0 (DefaultRecordBatch.incrementSequence); build
// BatchMeta with NewBatchMeta to get this right.
//
// # Duplicates on the wire
//
// Kafka does not append a duplicate. It answers the produce request with
// error NONE (not DUPLICATE_SEQUENCE_NUMBER (46): since the five-batch cache
// of KAFKA-5494, Kafka 1.0, brokers no longer send that code for produce),
// BaseOffset = Duplicate.FirstOffset, LogAppendTimeMs = Duplicate.Timestamp
// (UnifiedLog sets appendInfo.logAppendTime to the cached batch timestamp)
// and the current LogStartOffset. With acks=all the answer still waits, like
// an append, until the high watermark passes Duplicate.LastOffset.
//
// # Recording (State.Update) and other changes
//
// Update records a batch after it is in the log. A batch whose epoch differs
// from the producer's replaces the producer's retained batches
// (ProducerStateEntry.maybeUpdateProducerEpoch); the oldest of 5 is dropped
// when a sixth arrives. Followers call Update for every replicated batch
// without Check (AppendOrigin.REPLICATION). Update ignores a batch that
// does not start above the producer's newest retained batch, so replaying an
// already applied log range changes nothing.
//
// ExpireIdle drops producers whose newest batch's MaxTimestamp is at least
// maxIdle old (producer.id.expiration.ms, default 1 day, checked every
// producer.id.expiration.check.interval.ms, default 10 minutes). Like Kafka
// it compares the batch timestamp, the client's clock for CreateTime topics.
// Moving the log start (retention) does not drop producers, as in Kafka's
// onLogStartOffsetIncremented.
//
// TruncateTo drops retained batches at or above a truncation offset and
// producers left with none. It is cheap but approximate: batches pushed out of
// the 5-batch window by the truncated ones do not return, and a removed
// producer's older state is forgotten (it becomes unknown, so rule 6 lets it
// continue). Kafka's truncateAndReload is exact; to get the same, the broker
// calls Store.DeleteAbove(offset), then rebuilds as on startup with
// Store.Load(offset) and replays batches below offset.
//
// Transactions are out of scope: the Transactional flag is recorded and
// persisted but has no effect. There is no currentTxnFirstOffset, coordinator
// epoch, end-transaction marker handling, InvalidTxnState check or KIP-890
// verification; the broker must not feed control batches to Check.
//
// # Use by the broker
//
// The partition's single writer goroutine owns the State; it is not safe for
// concurrent use (Clone gives a copy for a background snapshot). Per
// produced batch, after segment validation: Check; on a duplicate, answer as
// above; on an error, map it to its code; otherwise append and then Update
// with the offsets and MaxTimestamp actually written (after LogAppendTime
// stamping). Only one batch per producer may be between Check and Update.
//
// On startup: Store.Load(logEndOffset); if nothing is found start from New()
// at the log start offset; then call Update for every batch header from the
// snapshot offset (or the log start, if greater) to the log end, and DeleteAbove(logEndOffset)
// to drop snapshots of a log tail lost in a crash. Save a snapshot at the log
// end offset at each segment roll and on clean shutdown (as Kafka does), so
// the replay is short.
//
// # Snapshot file format (version 1)
//
// A snapshot taken at offset X holds the state after every batch below X;
// files are named SnapshotFileName(X), "%020d.snapshot", and live in the
// partition directory next to the segments. All integers are big-endian.
//
//	offset  size  field
//	0       4     magic "SLPS"
//	4       2     version = 1
//	6       2     reserved flags = 0
//	8       8     snapshot offset X (>= 0)
//	16      4     producer count N
//	20      ...   N producer records, producer id strictly ascending:
//	                0   8  producer id (>= 0)
//	                8   2  producer epoch
//	                10  1  batch count B (1..5)
//	                11  B x 33-byte batch records, oldest first:
//	                      0   4  base sequence
//	                      4   4  last sequence
//	                      8   8  first offset (>= 0, > previous last offset)
//	                      16  8  last offset (>= first offset, < X)
//	                      24  8  max timestamp
//	                      32  1  flags: bit 0 transactional, others 0
//	end-4   4     CRC-32C (Castagnoli) of every preceding byte
//
// Equal states encode to equal bytes. Unlike Kafka's snapshot (which stores
// only each producer's last batch), all 5 retained batches are kept, so
// retries of in-flight batches are still recognised after a restart.
// A snapshot that is truncated, has trailing bytes, fails its CRC or any of
// the constraints above is rejected with ErrCorruptSnapshot (never a panic);
// decoding allocates in proportion to the bytes read, whatever N claims.
// Store.Load deletes such files (as Kafka does) and falls back to the next
// older one.
//
// Store.Save is atomic and durable when it returns: it writes
// "<name>.tmp", fsyncs it, renames it into place and fsyncs the directory;
// OpenStore deletes leftover ".tmp" files. It keeps the newest Keep
// snapshots. A Store's methods must not run concurrently on one directory.
//
// # Producer ids
//
// Producer ids are not allocated here: the controller hands out blocks of
// them through the replicated metadata log (raftlog/meta
// AllocateProducerIDs), so ids stay unique across brokers and restarts.
package producerstate
