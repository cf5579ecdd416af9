package clusterfile

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, Name)
	in := &File{
		ClusterID: "c1",
		CAFile:    "/x/ca.pem",
		Nodes: []Node{
			{ID: 1, PID: 10, Argv: []string{"sluice", "broker", "--node-id", "1"}, Client: "127.0.0.1:9093", ClientPlain: "127.0.0.1:9092", HTTP: "127.0.0.1:9094"},
			{ID: 2, PID: 11, Argv: []string{"sluice", "broker", "--node-id", "2"}, Client: "127.0.0.1:9103", ClientPlain: "127.0.0.1:9102"},
		},
	}
	in.SetBootstrap()
	if in.Bootstrap != "127.0.0.1:9093,127.0.0.1:9103" || in.BootstrapPlain != "127.0.0.1:9092,127.0.0.1:9102" {
		t.Fatalf("bootstrap = %q / %q", in.Bootstrap, in.BootstrapPlain)
	}
	if err := Write(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("Read = %+v, want %+v", out, in)
	}
	if n, ok := out.Node(2); !ok || n.PID != 11 {
		t.Fatalf("Node(2) = %+v, %v", n, ok)
	}
	if _, ok := out.Node(9); ok {
		t.Fatal("Node(9) found")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".cluster-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestReadRejects(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"garbage":  "{not json",
		"version":  `{"version": 99, "nodes": [{"id": 1}]}`,
		"no nodes": `{"version": 1, "nodes": []}`,
	} {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p); err == nil {
			t.Errorf("%s: Read accepted %q", name, body)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("Read of a missing file succeeded")
	}
}
