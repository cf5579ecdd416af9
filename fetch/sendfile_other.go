//go:build !linux

package fetch

import (
	"fmt"
	"io"
	"syscall"

	"github.com/sluice-io/sluice/wire"
)

// WriteSendfile falls back to copying outside Linux (development machines):
// sendfile with TCP_CORK is only implemented for Linux. conn must then also
// be an io.Writer.
func WriteSendfile(conn syscall.Conn, pieces []wire.Piece) (int64, error) {
	w, ok := conn.(io.Writer)
	if !ok {
		return 0, fmt.Errorf("fetch: sendfile: %T is not an io.Writer", conn)
	}
	return WriteCopy(w, pieces)
}
