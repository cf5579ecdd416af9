// Package bench measures a sluice broker's throughput beside the raw limits
// of the machine it runs on, in one run: `sluice bench` is its command.
//
// # What runs
//
// Run starts real broker processes (`<Binary> broker ...`) on loopback ports
// chosen by binding port 0 and releasing it, with a temporary data dir,
// --log.durability never and TLS material from internal/certs, and waits for
// their /readyz. The raw baselines run in peer processes started from the
// same binary (`<Binary> bench raw-peer`, see ServeRawPeer), so each baseline
// has the broker's shape: a server process and this client process on one
// loopback connection, each with its own Go runtime, the server's CPU read
// from /proc. The phases, in order:
//
//  1. a bare write(2) loop of Size bytes to a file (page-cache rate, and with
//     a final fdatasync), for reference;
//  2. broker A (sendfile): produce acks=1 with pre-built RecordBatch v2
//     bytes (BuildBatch, 1 MiB) over one connection, ProduceWindow requests
//     in flight, which also preloads the topic every fetch reads; its raw
//     limit is a peer that reads 1 MiB chunks from a socket into a file.
//     Then a franz-go producer with acks=1 (KgoSize);
//  3. fetch over plaintext (sendfile) beside a raw sendfile peer over the
//     same segment files; fetch over TLS beside a raw crypto/tls peer;
//  4. broker A stops, broker B starts with --disable-sendfile on the same
//     data dir: fetch over plaintext (copy) beside a raw pread+write peer.
//
// Each path and its raw baseline run Rounds times, alternately, so a burst
// of other load on the machine hits both alike; the reported MB/s is the
// median round. Every fetch path and raw peer first makes one unmeasured
// pass (page cache, connections, TLS session and buffers warm). Measured
// fetches are raw Fetch v12 requests, one in flight per connection, MaxWait
// 0; each response frame is read into a reused buffer and only the batch
// headers are walked (to find the next offset), so the client costs what a
// socket read (plus decryption for TLS) costs and no more. The raw peers'
// client side reads the same way.
//
// # Figures
//
// Throughput is in decimal MB/s of record bytes (whole batches). CPU is
// read from /proc/<pid>/stat of the broker or raw peer (utime+stime, USER_HZ
// 100) before and after a round, and from getrusage for this process.
// Each broker path names the raw baseline it is compared with; Report.link
// fills the percentage.
//
// # Replication (RunReplication, `sluice bench replication`)
//
// RunReplication starts three brokers the way `sluice dev` does (internal
// link, gossip, a generated cluster secret, all three raft voters, broker
// defaults otherwise unless ReplConfig.BrokerArgs says so) and measures:
//
//  1. catch-up: per round a fresh RF=3 topic; a follower that is not the
//     controller is frozen with SIGSTOP; CatchUpBytes are produced with
//     acks=1; once the other follower has caught up, the load is
//     fdatasynced on all brokers (so no dirty pages of the benchmark are
//     left); SIGCONT, and the time until the follower's
//     sluice_log_end_offset_sum (scraped from the follower every 10 ms, so
//     the polling costs the leader nothing) has grown by exactly the records
//     produced, with the leader's CPU from /proc and its
//     sluice_replica_fetch_bytes_total{path="sendfile"}. The raw baseline of
//     the round: a raw peer process sendfiles the leader's segment file of
//     the topic, and this process reads it BatchBytes at a time and writes
//     each read to a file;
//  2. acks=all: the pipelined raw client (producePipelined, acks -1) and a
//     franz-go producer at its defaults, alternating, each round on a fresh
//     RF=3 topic deleted afterwards; then scripts/nats-bench.sh (three
//     nats-server processes, an R3 stream, `nats bench js pub async`), whose
//     result line ParseNATSResult reads;
//  3. latency: an open-loop producer sends one batch per interval at
//     fractions of (2)'s throughput; a request's latency runs from when it
//     was due, so queueing behind a full window counts;
//  4. failover: SIGKILL of the leader of a partition the controller does not
//     lead; both survivors are probed with single-record acks=all Produce
//     requests (5 ms after each refusal) until one is acknowledged; the
//     victim is restarted and the next sample waits for a full ISR.
//
// The frozen broker is skipped when /v1/cluster is polled; every broker is
// resumed before the cluster stops.
//
// # Ownership and bounds
//
// Run and RunReplication are synchronous; each owns every goroutine it
// starts (progress printer, produce writer, one fetcher per connection, kgo
// callbacks, peer readers, failover probes, the NATS script's stderr
// reader) and waits for them. Broker and peer processes are stopped at the end
// (SIGTERM, or closing the peer's connection; SIGKILL on error), and get
// Pdeathsig so they never outlive the benchmark. Every loop is bounded by a
// count (passes, requests, empty fetches, peer requests) and by
// PhaseTimeout.
package bench
