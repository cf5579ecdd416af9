// Package follower runs a broker's replica fetchers: the I/O shell of the follower side of
// replication (the rules live in package replica).
//
// A Manager keeps one fetcher goroutine per source broker (the leader of the partitions fetched),
// not one per partition. Each fetcher sends one Fetch (version FetchVersion) at a time over one
// internal-link connection (purpose 'F', authenticated by the cluster secret, plaintext so the
// leader can answer with sendfile) carrying every partition it follows from that leader: this
// broker's replica id and broker epoch (ReplicaState), per partition the log end offset as fetch
// offset, the epoch of the last batch (LastFetchedEpoch) and the leader epoch it follows
// (CurrentLeaderEpoch, so a deposed leader answers FENCED_LEADER_EPOCH and a newer one
// UNKNOWN_LEADER_EPOCH). The request long-polls (MaxWait, MinBytes 1), so an idle follower costs
// one request per MaxWait per leader.
//
// Per partition of a response, in order: a diverging epoch truncates the log (Replica.Diverged);
// records are appended verbatim (Replica.Append, never re-stamped); OFFSET_OUT_OF_RANGE restarts the
// log at the leader's log start; other errors back that partition off for Backoff, or until the
// metadata gives it a new assignment (Set). After the appends of one response, the fetcher waits for
// all their fdatasyncs (durability=always) together, then reports the leader's HW and log start
// (Replica.Fetched). A connection error closes the connection and redials after Backoff.
//
// Set moves a partition between fetchers when its leader changes; Remove stops it at once (a
// response already in flight is applied only if the replica still follows the same epoch, which
// the Replica checks under its own lock). A fetcher with no partitions left stops.
//
// Each fetcher keeps an incremental fetch session (KIP-227) with its leader, on its connection: the
// first request lists every partition and asks for a session; later ones list only partitions that
// are new or whose position (fetch offset, last fetched epoch, leader epoch) changed, and forget the
// ones removed or backing off; the leader answers only partitions with records, errors, a diverging
// epoch or a new high watermark or log start. An error answer or a new connection starts over with
// a full request.
//
// Config.ThrottleBytesPerSec (off by default) is a replication throttle in the spirit of KIP-73, on
// the follower side only: a token bucket shared by the broker's fetchers bounds the record bytes
// they receive per second (the ask of each request shrinks to what the bucket holds, and the
// fetchers wait while it is empty), so a replica catching up does not starve producers. Unlike
// Kafka it applies to every partition, not to a configured list of throttled replicas.
package follower
