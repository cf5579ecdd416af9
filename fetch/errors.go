package fetch

import "errors"

// ErrShortFile reports that a file range ended before its announced length:
// the file was truncated (or never that long) underneath a frame whose size
// prefix has already been written. The peer's framing is now broken, so the
// caller must close the connection.
var ErrShortFile = errors.New("fetch: file shorter than range")

// ErrInvalidPiece reports a piece that cannot be sent: a negative position or
// length on a file range.
var ErrInvalidPiece = errors.New("fetch: invalid piece")
