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
// # Ownership and bounds
//
// Run is synchronous; it owns every goroutine it starts (progress printer,
// produce writer, one fetcher per connection, kgo callbacks, peer readers)
// and waits for them. Broker and peer processes are stopped at the end
// (SIGTERM, or closing the peer's connection; SIGKILL on error), and get
// Pdeathsig so they never outlive the benchmark. Every loop is bounded by a
// count (passes, requests, empty fetches, peer requests) and by
// PhaseTimeout.
package bench
