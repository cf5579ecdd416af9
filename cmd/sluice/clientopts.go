package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-io/sluice/internal/certs"
	"github.com/sluice-io/sluice/internal/clusterfile"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultDevDir is where `sluice dev` keeps its cluster unless told otherwise.
const defaultDevDir = ".sluice/dev"

// clientFlags are the connection flags shared by the client commands.
type clientFlags struct {
	bootstrap string
	cluster   string
	plaintext bool
	tls       bool
	caFile    string
	certFile  string
	keyFile   string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bootstrap, "bootstrap", "", "brokers, host:port[,host:port...] (default: the local dev cluster from cluster.json, else 127.0.0.1:9092)")
	fs.StringVar(&c.bootstrap, "b", "", "shorthand for --bootstrap")
	fs.StringVar(&c.cluster, "cluster", "", "cluster.json to take addresses and the CA from (default "+filepath.Join(defaultDevDir, clusterfile.Name)+" or $SLUICE_CLUSTER)")
	fs.BoolVar(&c.plaintext, "plaintext", false, "with a dev cluster: use the plaintext listener instead of TLS")
	fs.BoolVar(&c.tls, "tls", false, "connect with TLS (implied for a dev cluster unless --plaintext)")
	fs.StringVar(&c.caFile, "ca", "", "PEM CA file to verify brokers (implies --tls)")
	fs.StringVar(&c.certFile, "cert", "", "PEM client certificate for client-certificate authentication")
	fs.StringVar(&c.keyFile, "key", "", "PEM key for --cert")
}

// clusterPath returns the cluster.json to use, or "" if there is none.
func (c *clientFlags) clusterPath() string {
	if c.cluster != "" {
		return c.cluster
	}
	if p := os.Getenv("SLUICE_CLUSTER"); p != "" {
		return p
	}
	p := filepath.Join(defaultDevDir, clusterfile.Name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// options resolves the flags into kgo options: seeds and, when needed, TLS.
func (c *clientFlags) options() ([]kgo.Opt, string, error) {
	seeds := c.bootstrap
	useTLS := c.tls || c.caFile != ""
	ca := c.caFile
	if seeds == "" {
		if p := c.clusterPath(); p != "" {
			f, err := clusterfile.Read(p)
			if err != nil {
				return nil, "", err
			}
			if c.plaintext {
				seeds = strings.Join(f.Addrs(false), ",")
			} else {
				seeds = strings.Join(f.Addrs(true), ",")
				useTLS = true
				if ca == "" {
					ca = f.CAFile
				}
			}
		} else {
			seeds = "127.0.0.1:9092"
		}
	}
	list := splitList(seeds)
	if len(list) == 0 {
		return nil, "", usagef("--bootstrap names no broker")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(list...),
		kgo.ClientID("sluice-cli"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(30 * time.Second),
	}
	if useTLS {
		tc, err := c.tlsConfig(ca)
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, strings.Join(list, ","), nil
}

func (c *clientFlags) tlsConfig(ca string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool, err := certs.LoadPool(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		tc.RootCAs = pool
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
