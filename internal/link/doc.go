// Package link authenticates Sluice's internal connections (raft messages and
// replica fetches) with a cluster secret, then gets out of the way.
//
// # Contract
//
// A connection is authenticated once, at its start, by a mutual
// challenge-response over HMAC-SHA256 keyed with the cluster secret. Neither
// side ever sends the secret. After the handshake the socket is handed back
// exactly as it was: the *net.TCPConn itself, not a wrapper, with no deadline
// left set. Nothing after the handshake is encrypted or authenticated, on
// purpose: the replication path writes segment bytes with sendfile(2), which
// needs the raw socket. The handshake therefore proves who opened the
// connection; it does not protect the bytes that follow from an attacker who
// can hijack TCP streams on the internal network. Run the internal listener
// on a network you trust for integrity.
//
// # Handshake (version 1)
//
// All integers big-endian; every message has a fixed size, so each side reads
// exactly that many bytes (io.ReadFull) and never allocates on peer input.
//
//	client → server  hello, 44 bytes
//	  0      4  magic "SLNK"
//	  4      1  version (1)
//	  5      1  purpose ('R' raft, 'F' replica fetch, 'C' control)
//	  6      2  reserved, zero
//	  8      4  client node id (int32)
//	 12     32  client nonce Nc (crypto/rand)
//
//	server → client  challenge, 76 bytes
//	  0      4  magic "SLNK"
//	  4      1  version (1)
//	  5      1  status: 0 ok, 1 bad version, 2 purpose not served
//	  6      2  reserved, zero
//	  8      4  server node id (int32)
//	 12     32  server nonce Ns (crypto/rand)
//	 44     32  Ms = HMAC(secret, "sluice link v1 server\x00" || hello || challenge[0:44])
//
//	client → server  proof, 32 bytes
//	  0     32  Mc = HMAC(secret, "sluice link v1 client\x00" || hello || challenge[0:76])
//	                (all zero if the client could not verify Ms: "I give up")
//
//	server → client  verdict, 1 byte: 0 accepted (otherwise the server closes)
//
// The client verifies Ms before it sends anything derived from the secret;
// the server verifies Mc before it returns the connection from Accept. Both
// comparisons are constant-time (hmac.Equal). Both node ids and the purpose
// are inside the MACed transcript, so neither end can be misattributed and
// the purpose cannot be changed on the way. The two labels keep a server MAC
// from ever serving as a client MAC (no reflection). Fresh nonces on both
// sides make a recorded handshake useless for a later connection (replay).
// A non-zero status answers only peers that speak the framing; bytes that
// are not a hello get no answer at all.
//
// # Goroutines
//
// A Listener owns one accept goroutine and one goroutine per connection in
// handshake; at most MaxPendingHandshakes connections may be handshaking or
// waiting for Accept, and beyond that new connections are closed at once
// (ReasonOverload), so a slow or hostile client costs one slot for at most
// HandshakeTimeout and never blocks others. Each refused connection is
// closed, logged at Warn with its remote address and reason, counted in
// Stats and passed to OnRefused. Close stops everything and waits.
//
// Dialer and Listener are safe for concurrent use.
//
// # Secret file
//
// LoadSecret reads a file of mode 0600 or 0400 (group/world access is
// refused), trims surrounding whitespace and uses the remaining bytes as the
// HMAC key. It must hold 256 bits judged by alphabet (64 hex characters, 43
// base64 characters, or 32 arbitrary bytes). GenerateSecretFile writes 32
// random bytes as hex. The same secret also keys gossip encryption (package
// gossip derives its own key from it).
package link
