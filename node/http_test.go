package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	e := startNode(t, "", nil)
	base := "http://" + e.n.Addrs().HTTP
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := e.client(false, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, makeRecords("m", 20, "m")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		`sluice_requests_total{api="Produce"}`,
		`sluice_request_duration_seconds_bucket{api="Metadata"`,
		`sluice_fetch_bytes_total{path="sendfile"}`,
		`sluice_fetch_bytes_total{path="tls"}`,
		`sluice_connections{listener="client_plain"}`,
		"sluice_produce_records_total 20",
		`sluice_partitions{role="leader"} 1`,
		"sluice_log_end_offset_sum 20",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.DataDir = t.TempDir()
	ok.ClientPlain.Addr = "127.0.0.1:0"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, f := range map[string]func(*Config){
		"no data dir":       func(c *Config) { c.DataDir = "" },
		"no listener":       func(c *Config) { c.ClientPlain.Addr = "" },
		"bad addr":          func(c *Config) { c.ClientPlain.Addr = "nope" },
		"tls without cert":  func(c *Config) { c.Client.Addr = "127.0.0.1:0" },
		"require no CA":     func(c *Config) { c.ClientTLS.RequireClientCert = true },
		"negative node":     func(c *Config) { c.NodeID = -1 },
		"tiny frames":       func(c *Config) { c.MaxFrameBytes = 10 },
		"no in-flight":      func(c *Config) { c.MaxInFlightRequests = 0 },
		"no in-flight byte": func(c *Config) { c.MaxInFlightBytes = 0 },
		"zero partitions":   func(c *Config) { c.DefaultPartitions = 0 },
		"bad log config":    func(c *Config) { c.Log.SegmentBytes = 1 },
		"bad port":          func(c *Config) { c.ClientPlain.AdvertisedPort = 70000 },
		"no shutdown time":  func(c *Config) { c.ShutdownTimeout = 0 },
	} {
		c := ok
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

// TestClientCertRequired checks mutual TLS: without a client certificate the handshake fails, with
// one signed by the CA the client works.
func TestClientCertRequired(t *testing.T) {
	e := startNode(t, "", func(c *Config) {
		dir := filepath.Dir(c.ClientTLS.CertFile)
		c.ClientTLS.ClientCAFile = filepath.Join(dir, "ca.pem")
		c.ClientTLS.RequireClientCert = true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	noCert := e.client(true, kgo.RetryTimeout(time.Second))
	if err := noCert.Ping(ctx); err == nil {
		t.Fatal("client without certificate connected")
	}
	dir := filepath.Dir(e.cfg.ClientTLS.CertFile)
	certPEM, err := os.ReadFile(filepath.Join(dir, "client.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conf := e.tlsConf.Clone()
	cert, err := tlsKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	conf.Certificates = append(conf.Certificates, cert)
	withCert, err := kgo.NewClient(kgo.SeedBrokers(e.n.Addrs().Client), kgo.DialTLSConfig(conf))
	if err != nil {
		t.Fatal(err)
	}
	defer withCert.Close()
	if err := withCert.Ping(ctx); err != nil {
		t.Fatalf("client with certificate: %v", err)
	}
}

// TestOrphanDirectories checks start-up handling of partition directories the metadata does not list.
func TestOrphanDirectories(t *testing.T) {
	dir := t.TempDir()
	e := startNode(t, dir, nil)
	e.createTopic("keep", 1, nil)
	e.shutdown()
	// A directory left by a delete interrupted by a crash is removed at start.
	if err := os.MkdirAll(filepath.Join(dir, "ghost-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Client.Addr, cfg.ClientPlain.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	e2 := startWith(t, cfg, e.tlsConf)
	if _, err := os.Stat(filepath.Join(dir, "ghost-0")); !os.IsNotExist(err) {
		t.Fatalf("orphan kept: %v", err)
	}
	if e2.n.registry().get("keep") == nil {
		t.Fatal("topic lost")
	}
	e2.shutdown()
	// A data dir of another node id is refused.
	other := cfg
	other.NodeID = 7
	n, err := New(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "belongs to node 1") {
		n.Shutdown(context.Background())
		t.Fatalf("start on another node's data dir: %v", err)
	}
	// Without the metadata log, partition directories mean lost metadata: refuse to start.
	if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
		t.Fatal(err)
	}
	n, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no metadata log") {
		n.Shutdown(context.Background())
		t.Fatalf("start without a metadata log next to partition directories: %v", err)
	}
}
