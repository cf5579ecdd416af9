package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/certs"
	"github.com/sluice-io/sluice/wire"
)

// testEnv is a started node plus what clients need to reach it.
type testEnv struct {
	t       testing.TB
	n       *Node
	cfg     Config
	tlsConf *tls.Config // client side, trusts the node's CA
}

// caPEM returns the CA certificate that signed the node's TLS certificate.
func (e *testEnv) caPEM(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(e.cfg.ClientTLS.CertFile), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("SLUICE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// testConfig returns a config with both Kafka listeners and HTTP on 127.0.0.1:0 and a fresh TLS CA.
func testConfig(t testing.TB, dataDir string) (Config, *tls.Config) {
	t.Helper()
	files, err := certs.WriteDev(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.Client = Listener{Addr: "127.0.0.1:0"}
	cfg.ClientTLS = TLSFiles{CertFile: files.ServerCert, KeyFile: files.ServerKey}
	cfg.ClientPlain = Listener{Addr: "127.0.0.1:0"}
	cfg.HTTP = Listener{Addr: "127.0.0.1:0"}
	cfg.Logger = testLogger(t)
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return cfg, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// startNode starts a node on dataDir (a fresh temp dir when empty); mutate may change the config.
func startNode(t *testing.T, dataDir string, mutate func(*Config)) *testEnv {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg, clientTLS := testConfig(t, dataDir)
	if mutate != nil {
		mutate(&cfg)
	}
	return startWith(t, cfg, clientTLS)
}

func startWith(t testing.TB, cfg Config, clientTLS *tls.Config) *testEnv {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	e := &testEnv{t: t, n: n, cfg: cfg, tlsConf: clientTLS}
	t.Cleanup(func() { e.shutdown() })
	return e
}

func (e *testEnv) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.n.Shutdown(ctx); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
}

// client returns a kgo client over the TLS listener (useTLS) or the plaintext one.
func (e *testEnv) client(useTLS bool, opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	addrs := e.n.Addrs()
	base := []kgo.Opt{kgo.SeedBrokers(addrs.ClientPlain), kgo.RetryTimeout(20 * time.Second)}
	if useTLS {
		base = []kgo.Opt{kgo.SeedBrokers(addrs.Client), kgo.DialTLSConfig(e.tlsConf.Clone()), kgo.RetryTimeout(20 * time.Second)}
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

func (e *testEnv) admin(useTLS bool) *kadm.Client {
	return kadm.NewClient(e.client(useTLS))
}

// createTopic creates a topic through kadm and fails the test on error.
func (e *testEnv) createTopic(name string, partitions int32, configs map[string]*string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := e.admin(false).CreateTopics(ctx, partitions, 1, configs, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if r := resp[name]; r.Err != nil {
		e.t.Fatalf("create %s: %v", name, r.Err)
	}
}

// rawConn is a hand-driven Kafka connection for byte-level tests.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	br   *bufio.Reader
	corr int32
}

func (e *testEnv) dialRaw(useTLS bool) *rawConn {
	e.t.Helper()
	addrs := e.n.Addrs()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addrs.Client, e.tlsConf.Clone())
	} else {
		c, err = net.Dial("tcp", addrs.ClientPlain)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawConn{t: e.t, c: c, br: bufio.NewReader(c)}
}

// encodeRequest frames req with the given correlation id (client id "raw").
func encodeRequest(req kmsg.Request, corr int32) []byte {
	b := make([]byte, 4, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "raw"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (r *rawConn) send(b []byte) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := r.c.Write(b)
	return err
}

// request sends req and returns the raw response frame (without the size prefix).
func (r *rawConn) request(req kmsg.Request) []byte {
	r.t.Helper()
	r.corr++
	if err := r.send(encodeRequest(req, r.corr)); err != nil {
		r.t.Fatalf("send: %v", err)
	}
	frame, err := r.readFrame(15 * time.Second)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != r.corr {
		r.t.Fatalf("correlation id %d, want %d", got, r.corr)
	}
	return frame
}

func (r *rawConn) readFrame(timeout time.Duration) ([]byte, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	return wire.ReadFrame(r.br, 1<<30, nil)
}

// decode parses a response frame into resp (whose version must be set).
func decodeResponse(t testing.TB, frame []byte, resp kmsg.Response) {
	t.Helper()
	body := frame[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %T: %v", resp, err)
	}
}

// expectClosed asserts that the server closes the connection (EOF or reset) without answering.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	n, err := r.br.Read(buf)
	if err == nil {
		r.t.Fatalf("read %d bytes, want the connection closed", n)
	}
	var ne net.Error
	if errorsAs(err, &ne) && ne.Timeout() {
		r.t.Fatalf("connection still open after 10s")
	}
	if err != io.EOF {
		// a reset is a close too
		return
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// counterValue returns the value of the metric series name{labels} from the node's registry
// (0 when absent).
func counterValue(t *testing.T, n *Node, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func tlsKeyPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	return tls.X509KeyPair(certPEM, keyPEM)
}
