package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/node"
)

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantPos   []string
		wantParts int
		wantRF    int
	}{
		{[]string{"create", "orders", "--partitions", "3", "--replication-factor", "1"}, []string{"create", "orders"}, 3, 1},
		{[]string{"--partitions=2", "create", "x"}, []string{"create", "x"}, 2, -1},
		{[]string{"create", "--partitions", "4", "y"}, []string{"create", "y"}, 4, -1},
		{[]string{"create", "--", "--weird"}, []string{"create", "--weird"}, 1, -1},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		parts := fs.Int("partitions", 1, "")
		rf := fs.Int("replication-factor", -1, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !reflect.DeepEqual(pos, tc.wantPos) || *parts != tc.wantParts || *rf != tc.wantRF {
			t.Errorf("parseInterleaved(%q) = %q, partitions %d, rf %d; want %q, %d, %d", tc.args, pos, *parts, *rf, tc.wantPos, tc.wantParts, tc.wantRF)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterleaved(fs, []string{"x", "--nope"}); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestApplyConfig(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	id := fs.Int("node-id", 0, "")
	addr := fs.String("client-plain.addr", "", "")
	src := "# comment\nnode-id = 7\n\nclient-plain.addr=127.0.0.1:1\n"
	if err := applyConfig(fs, strings.NewReader(src), "f"); err != nil {
		t.Fatal(err)
	}
	if *id != 7 || *addr != "127.0.0.1:1" {
		t.Fatalf("got %d %q", *id, *addr)
	}
	// Command-line flags parsed afterwards win.
	if err := fs.Parse([]string{"--node-id", "9"}); err != nil || *id != 9 {
		t.Fatalf("override: %d %v", *id, err)
	}
	for _, bad := range []string{"nokey\n", "unknown = 1\n", "node-id = x\n", "config = other\n"} {
		if err := applyConfig(fs, strings.NewReader(bad), "f"); err == nil {
			t.Errorf("applyConfig(%q) accepted", bad)
		}
	}
	if got, err := configFileArg([]string{"--node-id", "1", "--config=/a"}); got != "/a" || err != nil {
		t.Errorf("configFileArg = %q, %v", got, err)
	}
	if got, err := configFileArg([]string{"-config", "/b"}); got != "/b" || err != nil {
		t.Errorf("configFileArg = %q, %v", got, err)
	}
	if _, err := configFileArg([]string{"--config"}); err == nil {
		t.Error("dangling --config accepted")
	}
}

// TestBrokerInt32Flags checks the broker's int32 flags take whole decimal
// numbers only, from the command line and from a config file alike.
func TestBrokerInt32Flags(t *testing.T) {
	cfg := node.DefaultConfig()
	var lf logFlags
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	brokerFlags(fs, &cfg, &lf)
	if err := fs.Parse([]string{"--node-id", "12", "--default-partitions=-3"}); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != 12 || cfg.DefaultPartitions != -3 {
		t.Fatalf("node-id %d, default-partitions %d; want 12, -3", cfg.NodeID, cfg.DefaultPartitions)
	}
	for _, bad := range []string{"1x", "12 34", "", "0x10", "2147483648", "1.5"} {
		err := fs.Set("node-id", bad)
		if err == nil || !strings.Contains(err.Error(), "node-id") {
			t.Errorf("--node-id %q: err = %v; want an error naming the flag", bad, err)
		}
		if err := applyConfig(fs, strings.NewReader("node-id = "+bad+"\n"), "f"); err == nil {
			t.Errorf("config node-id = %q accepted", bad)
		}
	}
	if cfg.NodeID != 12 {
		t.Fatalf("refused values changed node-id to %d", cfg.NodeID)
	}
}
