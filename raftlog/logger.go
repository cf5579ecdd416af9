package raftlog

import (
	"fmt"
	"log/slog"

	"go.etcd.io/raft/v3"
)

// RaftLogger adapts a *slog.Logger (nil: discard) to raft.Logger for
// raft.Config.Logger. raft's Debug goes to slog Debug, Info to Info, Warning
// to Warn, Error to Error. Fatal and Panic log at Error and then panic:
// raft calls them only on broken internal invariants and expects them not
// to return.
func RaftLogger(l *slog.Logger) raft.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return raftLogger{l.With("component", "raft")}
}

type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Info(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Info(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                 { r.die(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) { r.die(fmt.Sprintf(format, v...)) }
func (r raftLogger) Panic(v ...any)                 { r.die(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { r.die(fmt.Sprintf(format, v...)) }

func (r raftLogger) die(msg string) {
	r.l.Error(msg)
	panic("raft: " + msg)
}
