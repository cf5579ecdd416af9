// Package clusterfile reads and writes cluster.json, the description of a
// local cluster that `sluice dev` writes into its data directory.
//
// cluster.json is a public interface (docs/cluster-json.md): the end-to-end
// tests in cmd/sluice, scripts and the CLI's --bootstrap default read it to
// find each node's addresses, its process id and the exact argv that restarts
// it. Fields are only ever added; none is renamed or removed within a Version.
package clusterfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Version is the schema version written by this package.
const Version = 1

// Name is the file name inside a dev data directory.
const Name = "cluster.json"

// File is the whole cluster.json document.
type File struct {
	Version   int    `json:"version"`
	ClusterID string `json:"cluster_id"`
	// CAFile is the PEM CA that signed every node's TLS server certificate.
	CAFile string `json:"ca_file"`
	// ClientCertFile and ClientKeyFile are a client certificate signed by the
	// same CA, for trying client-certificate authentication.
	ClientCertFile string `json:"client_cert_file,omitempty"`
	ClientKeyFile  string `json:"client_key_file,omitempty"`
	// SecretFile holds the cluster secret that authenticates the internal
	// (raft, controller, replication) and gossip traffic.
	SecretFile string `json:"secret_file,omitempty"`
	// Bootstrap lists every node's TLS client address, comma-separated;
	// BootstrapPlain the plaintext ones.
	Bootstrap      string `json:"bootstrap"`
	BootstrapPlain string `json:"bootstrap_plain"`
	Nodes          []Node `json:"nodes"`
}

// Node describes one broker process.
type Node struct {
	ID  int32 `json:"id"`
	PID int   `json:"pid"`
	// Argv is the exact command line that (re)starts this node, argv[0]
	// included; run it with the working directory of WorkDir.
	Argv    []string `json:"argv"`
	WorkDir string   `json:"work_dir"`
	DataDir string   `json:"data_dir"`
	LogFile string   `json:"log_file"`

	Client      string `json:"client"`       // TLS client listener
	ClientPlain string `json:"client_plain"` // plaintext client listener
	HTTP        string `json:"http"`         // /healthz, /readyz, /metrics
	Internal    string `json:"internal,omitempty"`
	Gossip      string `json:"gossip,omitempty"`
}

// Write stores f as path atomically (temporary file, fsync, rename).
func Write(path string, f *File) error {
	if f.Version == 0 {
		f.Version = Version
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("clusterfile: encode: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cluster-*.json")
	if err != nil {
		return fmt.Errorf("clusterfile: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("clusterfile: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("clusterfile: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("clusterfile: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("clusterfile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("clusterfile: %w", err)
	}
	return nil
}

// Read loads and checks a cluster.json.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clusterfile: %w", err)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("clusterfile: %s: %w", path, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("clusterfile: %s: version %d, this build reads %d", path, f.Version, Version)
	}
	if len(f.Nodes) == 0 {
		return nil, fmt.Errorf("clusterfile: %s: %w", path, errors.New("no nodes"))
	}
	return &f, nil
}

// Addrs returns the nodes' client addresses, TLS or plaintext.
func (f *File) Addrs(tls bool) []string {
	var out []string
	for _, n := range f.Nodes {
		a := n.ClientPlain
		if tls {
			a = n.Client
		}
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Node returns the node with the given id.
func (f *File) Node(id int32) (*Node, bool) {
	for i := range f.Nodes {
		if f.Nodes[i].ID == id {
			return &f.Nodes[i], true
		}
	}
	return nil, false
}

// SetBootstrap fills Bootstrap and BootstrapPlain from the nodes.
func (f *File) SetBootstrap() {
	f.Bootstrap = strings.Join(f.Addrs(true), ",")
	f.BootstrapPlain = strings.Join(f.Addrs(false), ",")
}
