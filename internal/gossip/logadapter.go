package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger returns a *log.Logger for memberlist whose lines go to
// l at the level memberlist put in brackets: [TRACE] and [DEBUG] as Debug,
// [INFO] as Info, [WARN] as Warn, [ERR] and [ERROR] as Error; a line with no
// known prefix is logged at Info. The "memberlist: " prefix is dropped and
// the record carries component=memberlist instead.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{log: l.With("component", "memberlist")}, "", 0)
}

type levelWriter struct {
	log *slog.Logger
}

var levelPrefixes = []struct {
	prefix string
	level  slog.Level
}{
	{"[TRACE]", slog.LevelDebug},
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// Write receives exactly one log line per call (that is how log.Logger
// writes).
func (w *levelWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lp := range levelPrefixes {
		if bytes.HasPrefix(line, []byte(lp.prefix)) {
			level = lp.level
			line = bytes.TrimSpace(line[len(lp.prefix):])
			break
		}
	}
	ctx := context.Background()
	if !w.log.Enabled(ctx, level) {
		return len(p), nil
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	w.log.Log(ctx, level, string(line))
	return len(p), nil
}
