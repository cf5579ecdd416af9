package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestMemberlistLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[DEBUG] memberlist: Stream connection from=%s", "127.0.0.1:1")
	l.Printf("[INFO] memberlist: Suspect node-3 has failed, no acks received")
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: node-1)")
	l.Printf("[ERR] memberlist: Failed to send UDP ping: boom")
	l.Printf("no prefix at all")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []struct{ level, msg string }{
		{"level=DEBUG", `msg="Stream connection from=127.0.0.1:1"`},
		{"level=INFO", `msg="Suspect node-3 has failed, no acks received"`},
		{"level=WARN", `msg="Refuting a suspect message (from: node-1)"`},
		{"level=ERROR", `msg="Failed to send UDP ping: boom"`},
		{"level=INFO", `msg="no prefix at all"`},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w.level) || !strings.Contains(lines[i], w.msg) || !strings.Contains(lines[i], "component=memberlist") {
			t.Errorf("line %d = %q, want %s %s component=memberlist", i, lines[i], w.level, w.msg)
		}
	}
}

func TestMemberlistLogFiltered(t *testing.T) {
	var buf bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	l.Printf("[DEBUG] memberlist: chatter")
	l.Printf("[INFO] memberlist: more chatter")
	if buf.Len() != 0 {
		t.Fatalf("filtered levels were logged: %s", buf.String())
	}
}
