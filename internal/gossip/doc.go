// Package gossip keeps each broker's view of which brokers exist and whether
// they look alive, using hashicorp/memberlist (SWIM) on the gossip listener.
//
// Gossip suggests, raft decides: nothing here changes a leader or an ISR.
// The controller reads Members and OnChange events as hints.
//
// # States
//
//	Alive    memberlist counts the broker as a member, and our last direct
//	         pings were answered (or it announced itself since).
//	Suspect  memberlist still counts it as a member, but SuspectMisses
//	         consecutive direct pings from this node went unanswered
//	         (about SuspectMisses × ProbeInterval after it stops answering).
//	         Local and reversible: the next answered ping (ours or one of
//	         memberlist's own probes), or a meta update or rejoin from the
//	         broker, makes it Alive again.
//	Dead     memberlist declared it failed: its own probe (direct, indirect
//	         through other members, and TCP) failed, the broker did not
//	         refute the suspicion within SuspicionMult × max(1, log10 N)
//	         × ProbeInterval (up to 6× that while waiting for other members
//	         to confirm), and the verdict spread.
//	Left     it called Leave: memberlist's leave message came after meta
//	         with Leaving set.
//
// Why Suspect is ours and not memberlist's: memberlist v0.7.0 keeps its
// suspect state private. It has no callback for it, the *Node values that
// Members returns point into its table (reading them races with its
// writers), and their State field is never even filled in (nodeState
// shadows it). So this package runs a small prober of its own: once per
// ProbeInterval it sends each member memberlist holds as alive one
// memberlist ping (Memberlist.Ping, encrypted like all gossip) and counts
// misses; memberlist's own successful probes (PingDelegate) count as
// answers too. Our Suspect therefore means "this node cannot reach it
// directly right now", usually well before memberlist's dead verdict, and
// can also flag a one-sided network problem that memberlist's indirect
// probes paper over. Dead and Left are memberlist's verdicts, unchanged.
// The same shadowing hides leave-versus-crash in NotifyLeave, hence the
// Leaving flag in the meta.
//
// A broker that comes back (restart, healed partition) goes from Dead or
// Left to Alive when memberlist hears from it again.
//
// # Events
//
// OnChange receives every change of a member's State or Meta in the order
// this node observed them, including this node's own entry, from a single
// goroutine owned by the Membership. Events are queued, not dropped, unless
// MaxPendingEvents are waiting (then they are counted in
// Stats.DroppedEvents and the handler should resynchronise from Members).
// memberlist calls our delegates while holding its node lock; they only
// copy data and queue events, never call back into memberlist.
//
// # Node meta
//
// Published through memberlist's node meta (at most 512 bytes, checked with
// ErrMetaTooLarge before anything is sent). Big-endian:
//
//	0   1  version (1)
//	1   1  flags: bit 0 leaving; other bits must be zero
//	2   4  node id (int32)
//	6   8  broker incarnation (uint64)
//	14  …  five strings, each a 1-byte length then bytes:
//	       internal, client, client-plain, http, rack
//	…   …  (ignored: later revisions may append fields)
//
// A member whose meta does not decode, or whose memberlist name is not
// "node-<id>" for the id in its meta, is refused at its alive message
// (Stats.RejectedMeta).
//
// # Security
//
// All gossip (UDP packets and TCP push/pull) is encrypted and authenticated
// by memberlist with AES-256-GCM. The key is GossipKey(secret) =
// HMAC-SHA256(secret, "sluice gossip aes-256-gcm key v1"), so the cluster
// secret is never used directly as an AES key and the internal link's HMAC
// key differs from the gossip key. A member with another secret cannot
// decrypt anything: its Join fails and it never appears in Members. Config
// Cluster adds memberlist's packet label, so two clusters sharing a secret by
// accident still do not merge.
//
// # Timing
//
// DefaultConfig uses memberlist's LAN timing (probe every 1 s, 500 ms probe
// timeout, SuspicionMult 4, gossip every 200 ms, push/pull every 30 s);
// LocalConfig is for brokers on one host (200 ms / 100 ms / 3 / 50 ms / 5 s),
// which reports a killed broker Dead in about a second. memberlist's logs go
// to Config.Logger with their bracketed level mapped to slog levels.
//
// # Goroutines
//
// Start creates memberlist (its listeners and timers), one prober goroutine
// with at most one in-flight ping per member, and one event-delivery
// goroutine. Shutdown stops them all and waits. Membership is safe for
// concurrent use.
package gossip
