package fetch

import (
	"errors"
	"math"

	"github.com/sluice-io/sluice/wire"
)

// ErrShortFile reports that a file range ended before its announced length:
// the file was truncated (or never that long) underneath a frame whose size
// prefix has already been written. The peer's framing is now broken, so the
// caller must close the connection.
var ErrShortFile = errors.New("fetch: file shorter than range")

// ErrInvalidPiece reports a piece that cannot be sent: a negative position or
// length on a file range.
var ErrInvalidPiece = errors.New("fetch: invalid piece")

// badRange reports a file piece whose range is negative or overflows int64;
// both writers refuse it with ErrInvalidPiece.
func badRange(p *wire.Piece) bool {
	return p.Pos < 0 || p.Len < 0 || p.Len > math.MaxInt64-p.Pos
}
