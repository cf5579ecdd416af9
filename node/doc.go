// Package node is a single-node Kafka-compatible broker: configuration, lifecycle, listeners,
// connection handling, request handlers, partition state, topic metadata and metrics.
//
// # Lifecycle
//
//	n, err := node.New(cfg)      // validates cfg, loads TLS material; binds nothing
//	err = n.Start(ctx)           // opens the data dir (log recovery, producer state), binds listeners
//	addrs := n.Addrs()           // real bound addresses (port 0 works)
//	err = n.Shutdown(ctx)        // stop accepting, answer what was read, close logs
//
// # Listeners
//
// Client is TLS (1.2 minimum, optional client-certificate verification) and sends fetched records
// by copying them (pread into pooled buffers, written through the TLS connection). ClientPlain is
// plaintext and sends fetched records with sendfile(2) straight from the segment files (or by
// copying with Config.DisableSendfile). HTTP serves /healthz, /readyz and /metrics. Metadata tells a
// client the broker address of the listener the request arrived on.
//
// # Connections
//
// Every connection has two goroutines. The reader checks each frame's size before allocating it
// (negative, over MaxFrameBytes or truncated: the connection is closed) and reads ahead at most
// MaxInFlightRequests frames and MaxInFlightBytes bytes. The handler answers requests one at a time,
// in order (Kafka's per-connection ordering), and is the only writer to the socket. An unknown API
// key, an unsupported version (except ApiVersions, which gets Kafka's v0 UNSUPPORTED_VERSION answer
// listing the supported APIs) or an undecodable body closes the connection. A panic in a handler is
// recovered, logged with its stack and closes that connection only.
//
// # Partitions, durability and the high watermark
//
// A partition is a segment.Log in <DataDir>/<topic>-<partition>/. Produce appends serialise on a
// per-partition mutex (the producer-state check, the append and the producer-state update happen
// under it); Fetch, ListOffsets and Metadata never take it. segment.Log.Append returns once the
// topic's durability policy (sluice.durability) is met:
//
//	never     (default, like Kafka) written to the page cache; survives a process crash, not a
//	          machine crash
//	interval  additionally fsynced every Log.FlushInterval
//	always    fsynced (group commit) before the produce is answered
//
// With always, the fsync happens inside the partition's append lock, so concurrent producers to one
// partition do not share an fsync (segment's group commit only helps callers that append
// concurrently).
//
// On a single node the high watermark is the log end offset after an append returns; acks=1 and
// acks=all are therefore the same promise, namely the durability policy above. Consumers read below
// the high watermark; each partition's fetch.Signal is notified after it advances, which wakes
// long-polling fetches (no polling loops).
//
// # Produce
//
// Exactly one RecordBatch v2 per partition, validated once (segment.ValidateBatch) and stored as is
// (compressed batches are not decompressed). The leader stamps baseOffset and partitionLeaderEpoch,
// which lie outside the CRC. Errors map to Kafka codes in one place (codeFor); the checks and their
// codes are listed on handleProduce. Transactional batches are refused with INVALID_RECORD and
// InitProducerId with a transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED: transactions are
// not implemented. Topics with message.timestamp.type=LogAppendTime are not supported (CreateTime
// only). With acks=0 no response is sent; a failed acks=0 request closes the connection, as Kafka
// does.
//
// Idempotent producers: producer ids come from a persisted block allocator
// (<DataDir>/meta/producer-ids); each partition's producer state (internal/producerstate) is checked
// before the append and updated after; a retried batch gets its original base offset. The state is
// snapshotted to <partition dir>/<offset>.snapshot every ProducerSnapshotInterval and on close, and
// rebuilt on open from the newest snapshot plus the batch headers after it.
//
// # Fetch
//
// Sessionless: the reply always has SessionId 0 and every requested partition; an incremental
// request (SessionId != 0, epoch > 0) gets FETCH_SESSION_ID_NOT_FOUND. For each partition the node
// freezes the high watermark and a segment.View of whole batches (pinned until the response is
// written), then wire.FetchResponse sizes the frame and yields pieces (bytes | file range).
// Partition and response MaxBytes apply, except that the response's first batch is sent whole
// (KIP-74). MinBytes/MaxWait long-poll on the partitions' signals.
//
// # Topics
//
// Topic metadata (name, UUID, partition count, explicit configs) is kept by a small store,
// <DataDir>/meta/topics.json, rewritten atomically on every change; the cluster id lives in
// <DataDir>/meta/cluster.json. Partition directories the metadata does not list are removed at start
// (a delete interrupted by a crash). Topic configs: retention.ms, retention.bytes, segment.bytes,
// segment.ms, max.message.bytes, min.insync.replicas (> 1 makes acks=all fail with
// NOT_ENOUGH_REPLICAS on one node), cleanup.policy (delete only), message.timestamp.type (CreateTime
// only) and the Sluice-specific sluice.durability = never | interval | always. Unknown configs are
// refused with INVALID_CONFIG.
//
// # Metrics
//
// All in the node's own prometheus.Registry (Node.Registry), prefix sluice_, no per-partition labels:
// requests and error codes by API, request duration by API, bytes in/out, connections by listener and
// close reason, produce bytes/records/batches, fetch record bytes by path (sendfile, copy, tls),
// fetch wake-ups, topics, partitions, sums of log start/end offsets, handler panics.
package node
