// Package node is a Kafka-compatible broker and cluster member: configuration, lifecycle,
// listeners, connection handling, request handlers, the wiring of the partition replicas (package
// partition) to the replicated metadata image, and metrics.
//
// # Lifecycle
//
//	n, err := node.New(cfg)      // validates cfg, loads TLS material; binds nothing
//	err = n.Start(ctx)           // binds listeners, starts the metadata plane (below), serves
//	addrs := n.Addrs()           // real bound addresses (port 0 works), Internal and Gossip included
//	err = n.Shutdown(ctx)        // controlled shutdown, stop accepting, answer what was read, close
//
// Start on a single node (InitialVoters = [NodeID], the default) returns once the one-voter raft
// log has been replayed, the broker is registered and unfenced and every stored topic is open and
// led, so the node serves at once. In a cluster Start returns once everything listens; /readyz
// turns 200 when the node is ready (see HTTP).
//
// # Metadata plane
//
// Topic and partition metadata is a raft-replicated log (package raftlog) applied to an immutable
// image (raftlog/meta), also on a single node (one voter, no transport traffic). Its storage and
// the node identity (cluster id, node id, a random 16-byte incarnation drawn when the data dir is
// first registered) live in <DataDir>/raft/. The voters are InitialVoters, fixed at bootstrap;
// other brokers are added as raft learners by the controller when they register. The raft leader
// is the controller (package raftlog/controller): every node runs a controller.Server, active only
// while it leads, and reaches the current controller with a controller.Client (its own server
// through an in-memory pipe, others over the internal link with purpose 'C').
//
// Goroutines of the metadata plane, all started by Start and stopped by Shutdown: the raft node's
// Run; the internal listener's accept loop (raft connections to raftlog.Node.Serve, controller
// connections to controller.Server.Serve); the controller's Run; memberlist's and the gossip join
// loop; the reconciler; the broker loop.
//
// The broker loop registers the broker (RegisterBroker through the controller: a new broker epoch
// on every start) and heartbeats every HeartbeatInterval. The controller unfences it once its
// applied metadata reaches the registration. A STALE_BROKER_EPOCH (or BROKER_ID_NOT_REGISTERED)
// answer, or no successful heartbeat for SessionTimeout, makes the broker treat itself as fenced:
// it stops leading every partition at once (zombie fencing) and registers again. Independently,
// every produce checks a leader lease: each acknowledged heartbeat grants LeaderLease (as the
// controller says in its answer) from the heartbeat's send time, counted only once the local image
// has reached the controller's image index carried in that answer. The controller fences no broker,
// on session expiry or on gossip's dead verdict, before the last lease it granted ends, so a broker
// frozen for any length of time refuses writes when it wakes, before it has heard from anybody;
// and when its first heartbeat after waking is acknowledged (the controller may unfence it at
// once), it still refuses them until its image shows what the controller had decided meanwhile,
// such as another leader for its partitions. A write whose lease ran out during the append is not
// acknowledged.
//
// The reconciler is the only writer of the local replicas. It reads a raftlog.MetaSubscription and
// reconciles the replicas with the newest image: replicas the image no longer assigns here are
// closed and their directories deleted; new ones are opened (a directory's partition.metadata names
// its topic id, so a directory left by a deleted topic of the same name is replaced, never reused);
// each replica becomes leader (segment.Log.AssignEpoch(leaderEpoch, LEO) before the first write,
// every batch then stamped with the image's leader epoch) or follower (writes refused). A broker
// that is not registered-and-unfenced in the image, or that its heartbeats say is fenced, leads
// nothing. Once the image holds this broker's current registration (so everything committed before
// it), partition directories the image does not assign here are removed once. A data dir with
// partition directories but no metadata log refuses to start.
//
// Replication (docs/replication.md): each replica's rules live in a replica.Core (package replica,
// pure), driven by the replica's shell in package partition. A leader's core tracks its followers'
// fetch offsets and answers acks=all waits when the high watermark passes them; its ISR changes go
// to the controller as AlterPartition commands (isr.go's alterPartitions, every replica's
// partition.ISRProposer, batched across partitions). A follower replica is fetched by package
// follower's fetchers, one per leader broker, over the internal link (purpose 'F'); the leader
// serves them through the same Fetch handler as clients, with sendfile, reading up to its log end.
//
// Admin requests (CreateTopics, DeleteTopics, CreatePartitions, auto-creation, producer id blocks
// for InitProducerId) are proposed through the controller.Client, which forwards them to the
// controller; the node answers once the command is applied locally (WaitApplied and reconciled).
// The proposer picks topic ids (meta.NewTopicID) and replica assignments (meta.Place over the
// unfenced brokers, rotated by the number of existing partitions). ReplicationFactor -1 means
// Config.DefaultReplicationFactor, whose default 0 means min(3, number of voters), capped at the
// number of unfenced brokers; an explicit factor above the unfenced brokers is
// INVALID_REPLICATION_FACTOR.
//
// # Membership
//
// With Gossip set, the broker runs memberlist (internal/gossip), joins Seeds (retrying) and
// publishes NodeMeta{node id, internal/client/HTTP addresses, rack, incarnation (first 8 bytes of
// the data-dir incarnation)}. A dead verdict is passed to the controller (Server.MemberDead), which
// fences after its own session check; gossip never moves a leader itself. Raft and controller peers
// are resolved from gossip (members seen alive), then from the image's registrations.
//
// # Wiped data directories
//
// A voter whose metadata log is empty asks, before bootstrapping, the controller of an existing
// cluster (through any broker gossip sees alive, bounded by an election timeout) whether its node
// id is registered, with a side-effect-free heartbeat of broker epoch 0. If it is, Start fails with
// ErrWipedVoter and the recovery: start the machine with a NEW node id on an empty data dir, then
// run `sluice cluster replace-voter --dead <old> --new <new>` (controller RPC ReplaceVoter, once
// the new node has caught up as a learner). A data dir of another node id or cluster id is refused
// (ErrIdentityConflict); a re-registration with another incarnation is refused by the controller
// while the old registration is live.
//
// # Listeners
//
// Client is TLS (1.2 minimum, optional client-certificate verification) and sends fetched records
// by copying them (pread into pooled buffers, written through the TLS connection). ClientPlain is
// plaintext and sends fetched records with sendfile(2) straight from the segment files (or by
// copying with Config.DisableSendfile). HTTP serves /healthz, /readyz, /metrics and /v1/cluster. Internal (raft,
// controller RPC) is plaintext, every connection authenticated by the cluster secret
// (internal/link); a peer without it is refused and logged. Gossip is memberlist (UDP and TCP).
//
// Metadata answers from the applied image: the registered, unfenced brokers with the address of the
// listener kind the request arrived on (each registration stores both its TLS and plaintext client
// addresses), the raft leader as controller id (-1 when unknown), and per partition its leader (-1
// and LEADER_NOT_AVAILABLE when it has none), leader epoch, replicas, ISR and offline replicas
// (replicas on fenced or unregistered brokers). Produce, Fetch, ListOffsets and
// OffsetForLeaderEpoch are answered by a partition's leader only (NOT_LEADER_OR_FOLLOWER
// elsewhere); a CurrentLeaderEpoch below the image's is FENCED_LEADER_EPOCH, above it
// UNKNOWN_LEADER_EPOCH.
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
// Each local replica is a partition.Replica over a segment.Log in <DataDir>/<topic>-<partition>/
// (with partition.metadata naming its topic id). Package partition states its contract: the
// writer lock that Produce appends serialise on (Fetch, ListOffsets and Metadata never take it),
// what each durability policy (the topic's sluice.durability) makes durable when, how the high
// watermark is computed and checkpointed, and how the producer state survives restarts. This
// package decides what a replica is given: its segment.Config (the topic's configs over
// Config.Log, parsed in topicconfig.go), min.insync.replicas, the replication settings
// (ReplicaLagTime) and the ISR proposer; and it runs the timers: lag ticks, CheckpointHW every
// HighWatermarkCheckpointInterval, Snapshot every ProducerSnapshotInterval, retention below the
// high watermark every RetentionCheckInterval.
//
// acks=1 answers after the local append (under the topic's durability policy); acks=all answers
// once the high watermark passes the batch, i.e. once every ISR member has fetched it. Consumers
// read below the high watermark, followers up to the log end; each replica's Signal wakes
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
// Idempotent producers: producer ids come from blocks the controller allocates to this broker
// (AllocateProducerIDs, committed in the metadata log, so ids are never reused cluster-wide); each
// replica checks its producer state before the append and updates it after, and a retried batch
// gets its original base offset (package partition; snapshots every ProducerSnapshotInterval and
// on close).
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
// Topic metadata (name, UUID, replica assignment, explicit configs) is the metadata image (see
// Metadata plane). Topic configs: retention.ms, retention.bytes, segment.bytes,
// segment.ms, max.message.bytes, min.insync.replicas (default 2 for a replication factor of 3 or
// more, else 1; acks=all is refused while the ISR is smaller), cleanup.policy (delete only), message.timestamp.type (CreateTime
// only), unclean.leader.election.enable (default false; read by the controller when a partition has
// no live ISR member) and the Sluice-specific sluice.durability = never | interval | always. Unknown
// configs are refused with INVALID_CONFIG.
//
// # Metrics
//
// All in the node's own prometheus.Registry (Node.Registry), prefix sluice_, no per-partition labels:
// requests and error codes by API, request duration by API, bytes in/out, connections by listener and
// close reason, produce bytes/records/batches, fetch record bytes by path (sendfile, copy, tls),
// fetch wake-ups, topics, sums of log start/end offsets, handler panics; and of the metadata plane:
// sluice_raft_leader_changes_total, sluice_raft_applied_index, sluice_controller_is_active,
// sluice_broker_fenced, sluice_partitions{role="leader|follower"} (replicas hosted here) and
// sluice_offline_partitions (partitions without a leader in this node's image).
package node
