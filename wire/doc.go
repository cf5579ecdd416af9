// Package wire is Sluice's Kafka protocol edge: framing, request decoding,
// response encoding, error codes, the advertised API versions, and a
// hand-written Fetch response encoder whose record data goes out by sendfile.
//
// It imports kmsg (franz-go's generated protocol structs) and no Sluice
// package. Nothing here keeps state between calls, starts goroutines, or does
// I/O beyond the io.Reader handed to ReadFrame; every function is safe for
// concurrent use on distinct arguments. A Versions table is read-only once
// built and may then be shared.
//
// # Requests
//
// A connection loop calls ReadFrame (size-checked before any allocation,
// growing its buffer only as bytes arrive), then ParseRequest:
//
//	i32 size | i16 key | i16 version | i32 correlation id | i16 len + client id (-1 = null)
//	         | [flexible: tagged fields, skipped] | body (kmsg ReadFrom)
//
// Failures are typed: ErrMalformed and ErrUnknownAPI close the connection;
// *UnsupportedVersionError carries the header so that an ApiVersions request
// of an unknown version can still be answered (APIVersionsError, a v0
// response with UNSUPPORTED_VERSION and the API list); for any other key the
// broker closes the connection, as Kafka does. Produce v0–2 parse fine but
// must be answered with UNSUPPORTED_VERSION (ProduceMinServedVersion). Decoded byte fields
// (Produce records) alias the frame, so the frame buffer belongs to the
// request until the handler is done with it. kmsg's decoder runs behind a
// recover: a panic there becomes ErrMalformed for that connection only.
//
// # Responses
//
// AppendResponse writes size, correlation id, a 0x00 tag section when the
// response is flexible (never for ApiVersions, whose response header is
// always v0), then kmsg's AppendTo. Everything except Fetch goes this way.
//
// # Fetch responses, v4–16
//
// FetchResponse.Pieces produces a frame as []Piece: in-memory bytes
// interleaved with file ranges, for one writev plus sendfile per range. The
// record bytes never enter user space.
//
// Layout (v = version; "flex" = v12+, which uses compact uvarint(n+1)
// lengths and tag sections; classic versions use i32/i16 lengths):
//
//	i32 size                           bytes after this field
//	i32 correlation id
//	u8  0x00                           flex: response header tags
//	i32 throttle ms
//	i16 error code, i32 session id     v7+
//	len topics                         i32 | uvarint(n+1)
//	  topic                            v4–11: i16 len + name; v12: uvarint(len+1) + name; v13+: 16-byte UUID
//	  len partitions
//	    i32 partition, i16 error, i64 high watermark, i64 last stable offset
//	    i64 log start offset           v5+
//	    aborted transactions           always null: i32 -1 | uvarint 0
//	    i32 preferred read replica     v11+
//	    len records                    i32 n (-1 null) | uvarint(n+1) (0 null)
//	    n record bytes                 <- file range pieces (sendfile)
//	    partition tags                 flex: count, then
//	                                     tag 0 DivergingEpoch {i32 epoch, i64 end offset, 0x00} if set
//	                                     tag 1 CurrentLeader {i32 id, i32 epoch, 0x00} if set
//	  u8 0x00                          flex: topic tags
//	top-level tags                     flex: count; v16 tag 0 NodeEndpoints when non-empty:
//	                                     uvarint(n+1) x {i32 node, str host, i32 port, nullable str rack, 0x00}
//
// Encoding takes two passes over the response. The size pass adds up every
// field: the total frame size must be written first, and from v12 the width
// of each partition's uvarint(n+1) record length depends on n (1 byte below
// 127 record bytes, 2 below 16383, ...). So every record-set length — the
// sum of its file ranges — must be fixed before encoding and stay fixed
// until the frame is on the wire; segments are pinned for that. The write
// pass then appends the fields into one buffer sized exactly by the size
// pass, cutting a Bytes piece at every record set and emitting the ranges
// (merging contiguous ranges of one file). A frame with k non-empty record
// sets is at most k+1 Bytes pieces plus its ranges, in one allocation.
//
// Tests check the pieces, put together from real files, byte for byte
// against kmsg's FetchResponse.AppendTo for every version and for record
// lengths on both sides of each varint width boundary.
package wire
