// Package fetch puts Fetch responses on the wire and wakes long-polling
// fetches when data arrives.
//
// # Writers
//
// wire.FetchResponse.Pieces turns a response into a list of pieces: byte
// pieces (size prefix, headers, partition fields, tagged fields) and file
// ranges (whole record batches inside segment files). The frame size was
// computed from those ranges before the first byte is sent. Two writers
// emit the same pieces:
//
//	WriteSendfile(conn, pieces)   plaintext TCP: client-plain and internal (replication) listeners
//	  cork ── writev(bytes…) ── sendfile(range) ── writev(bytes…) ── sendfile(range) … ── uncork
//
//	WriteCopy(w, pieces)          TLS: client listener (Copier.WriteBuffered adds a pooled bufio.Writer)
//	  write(bytes) ── pread(range chunk) → write(chunk) ── … ── flush
//
// Both return the number of bytes the connection accepted. Both are called
// by the one goroutine that writes responses on a connection; nothing here
// serialises two responses on one socket. The caller keeps the pieces and
// their files valid until the call returns (a segment.View pins its
// segments; release it afterwards). Pieces are not modified, and the pooled
// scratch is not retained past the call, so the caller may reuse the slice.
//
// Any error leaves a partial frame on the wire: the caller must close the
// connection, never write another response on it.
//
// # Explicit offsets
//
// A segment file is shared by every fetch reading it, concurrently. Its
// *os.File offset is one shared cursor: io.Copy from the file (which becomes
// sendfile through TCPConn.ReadFrom) reads at, and advances, that cursor, so
// two concurrent fetches would interleave. io.SectionReader avoids the
// cursor but makes the net package fall back to copying. WriteSendfile calls
// sendfile(2) with an explicit offset pointer and WriteCopy uses pread(2)
// (File.ReadAt); neither reads or moves the file offset.
//
// The file descriptor is borrowed through File.SyscallConn().Control rather
// than File.Fd(). Fd would put the file into blocking mode (harmless for
// regular files, but a side effect on a shared *os.File) and, more
// importantly, does not stop a concurrent Close: the descriptor number could
// be closed and reused by another open while sendfile still sends "from" it.
// Inside Control the descriptor stays open until the send ends.
//
// # Blocking and deadlines
//
// Sockets from the net package are non-blocking. Every write and sendfile
// runs inside the socket's RawConn.Write: on EAGAIN the callback returns
// false and the goroutine parks on the runtime poller until the socket is
// writable, instead of spinning or blocking a thread. Partial writes and
// partial sendfile counts are resumed where they stopped. Write deadlines
// set on the conn are honoured (the error wraps os.ErrDeadlineExceeded).
// SIGPIPE is not raised for these sockets by the Go runtime; a vanished peer
// gives EPIPE or ECONNRESET.
//
// # Why cork
//
// Without TCP_CORK every writev and sendfile pushes what it has: the 4-byte
// size prefix, each partition header and each small tail of tagged fields
// leave as their own small segments. With the cork set for the whole
// response, the kernel builds full-sized segments across piece boundaries;
// clearing it at the end (also on error) pushes the remainder at once
// rather than after the kernel's 200 ms cork timeout. On loopback with
// 16 KiB ranges behind 40-byte headers the corked writer sent 19 data
// segments per MiB (as many as a bare sendfile loop) against 32-69 uncorked
// (the kernel's autocorking merges some headers, not all), for about 10%
// less CPU per byte (docs/benchmarks.md, "Fetch writers"). On a real network
// each extra segment is a small packet. A socket without TCP_CORK (a Unix
// socket) is sent uncorked.
//
// # Why the TLS path copies
//
// Go's crypto/tls encrypts in user space (there is no kernel TLS offload
// here), so the plaintext has to pass through user memory anyway. WriteCopy
// preads each range in chunks into a pooled buffer (CopierConfig.ChunkBytes,
// 64 KiB by default: four full TLS records) and writes them to the
// connection; tls.Conn cuts records of up to 16 KiB. WriteBuffered puts a
// pooled 16 KiB bufio.Writer in front so the small byte pieces between
// ranges share a record and a syscall instead of each becoming one; large
// chunks bypass the buffer. No buffer is allocated per request once the
// pools are warm.
//
// # Short files
//
// The frame size announced the full length of every range. If a file is
// shorter than a range when it is sent (truncated underneath, which the
// segment pinning should make impossible, so it indicates a bug or outside
// interference), sendfile returns 0 before the range is done, or pread
// returns io.EOF. The writers stop and return an error wrapping
// ErrShortFile, with the count of bytes already sent; the peer cannot parse
// the rest of the frame, so the caller closes the connection (Kafka does the
// same: "truncated during write").
//
// Other errors: ErrInvalidPiece for a negative or overflowing range;
// os.ErrClosed for a closed file; net.ErrClosed for a closed connection.
//
// # Long-poll wake-ups
//
// A fetch that has fewer than MinBytes available waits up to MaxWaitMs for
// more. Each partition owns a Signal, notified after an append advances the
// high watermark (or the log end offset, for follower fetches). Signal.Wait
// returns a channel closed by the next Notify; Notify is one atomic load when
// nobody waits, so the append path pays nothing for idle partitions.
//
// A fetch over many partitions uses one Waiter instead of one channel per
// partition: the Waiter registers itself in each partition's Signal (one
// map insert under that Signal's mutex), a Notify on any of them puts a
// token in the Waiter's single channel and records which Signal fired, and
// Stop unregisters it (one delete per partition). The fetch goroutine
// selects on three things: the Waiter, its timer and its context. Arming
// and disarming cost O(number of partitions), the same order as building
// the response itself; after a wake-up that did not satisfy MinBytes,
// Rearm re-registers only the Signals that fired, so a hot partition costs
// O(1) per append, not O(partitions). No goroutine is started per partition
// (thousands of goroutines for one request) and no reflect.Select over
// thousands of cases is needed. A single broker-wide signal would be
// cheaper to arm but would wake every waiting fetch on every append; the
// per-partition registration wakes only fetches that asked for that
// partition.
//
// No wake-up is lost if the waiter registers before it checks:
//
//	w.Add(&p.signal) for every partition      // 1. register
//	while available < MinBytes:                // 2. check
//	    select { <-w.C(): w.Rearm() ; <-timer.C: break ; <-ctx.Done(): break }
//	w.Stop()                                   // 3. unregister, reply
//
// The appender publishes the new high watermark (atomically) before calling
// Notify; either the check sees it, or Notify sees the registration (Rearm
// re-registers before the re-check). A wake-up says only that some
// partition changed; re-check before replying.
//
// # Package state
//
// The package keeps two sync.Pools of scratch memory (sender state for
// WriteSendfile, buffers for WriteCopy's default Copier) and nothing else:
// no behaviour depends on them.
//
// # Portability
//
// WriteSendfile is implemented for Linux. Elsewhere it falls back to
// WriteCopy, which needs conn to be an io.Writer.
package fetch
