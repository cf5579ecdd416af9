package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/fetch"
	"github.com/sluice-io/sluice/internal/certs"
	"github.com/sluice-io/sluice/internal/fsutil"
	"github.com/sluice-io/sluice/raftlog"
	"github.com/sluice-io/sluice/wire"
)

// dataDirLockFile is the file in the data directory a running broker holds an exclusive flock on.
const dataDirLockFile = ".lock"

// Addrs are the bound addresses of a started node's listeners ("host:port"; empty when disabled).
type Addrs struct {
	Client      string // TLS Kafka listener
	ClientPlain string // plaintext Kafka listener
	HTTP        string // /healthz, /readyz, /metrics, /v1/cluster
	Internal    string // raft + controller RPC (internal/link); empty on a single node without it
	Gossip      string // memberlist (UDP and TCP)
}

// Node is a single-node Kafka-compatible broker. Create it with New, run it with Start, stop it with
// Shutdown. A Node is started at most once. Its methods are safe for concurrent use.
type Node struct {
	cfg      Config
	lg       *slog.Logger
	versions wire.Versions
	metrics  *metrics
	copier   *fetch.Copier
	frames   framePool
	tlsConf  *tls.Config

	reg   atomic.Pointer[registry]
	ready atomic.Bool

	// Metadata plane (cluster.go, broker.go, reconcile.go).
	cp          *clusterPlane
	raft        *raftlog.Node
	mm          *raftlog.MetaMachine
	sub         *raftlog.MetaSubscription
	ctrl        controlPlane
	ctl         *controllerGlue
	pids        *pidAllocator
	brokerEpoch atomic.Int64 // current registration's epoch; 0 before the first registration
	hbFenced    atomic.Bool  // the controller says (or silence implies) this broker is fenced
	// lease is this broker's leadership lease, built from acknowledged heartbeats (see leaseState).
	// The controller cannot fence the broker before a lease ends (it counts the session from the
	// heartbeat's arrival), and a lease counts only once the local image has caught up with the
	// controller's image at the acknowledgement; so a broker that checks the lease on every write
	// never acts as leader after it was fenced, even if it was frozen and has not yet noticed.
	lease     atomic.Pointer[leaseState]
	clockBase time.Time
	dirLock   *fsutil.Lock     // the data directory's lock, held from Start to the end of Shutdown
	offline   *offlineReplicas // replicas whose logs failed, reported to the controller
	// queued bounds request frames read but not yet answered, across connections.
	queued       byteBudget
	shuttingDown atomic.Bool // controlled shutdown in progress
	changed      broadcast   // cluster state changed (image applied, registration, fencing)
	hintTurn     atomic.Uint32
	kick         chan struct{}

	identMu          sync.Mutex
	ident            raftlog.Identity // empty ClusterID until stored
	freshIncarnation [16]byte         // incarnation drawn for a fresh data dir, persisted on registration

	stopping chan struct{} // closed when Shutdown starts: wakes long polls, stops background work
	connWG   sync.WaitGroup
	bgWG     sync.WaitGroup

	mu        sync.Mutex
	state     int // stateNew, stateStarted, stateStopped
	listeners []*listener
	conns     map[*conn]struct{}
	httpSrv   *http.Server
	httpLn    net.Listener
	addrs     Addrs
}

const (
	stateNew = iota
	stateStarted
	stateStopped
)

// ErrStarted is returned by Start on a node that was already started (or shut down).
var ErrStarted = errors.New("node: already started")

// New validates cfg and prepares a node (TLS material is loaded here, so a bad certificate fails
// early). It binds nothing and touches no data; Start does.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("node_id", cfg.NodeID)
	if cfg.Log.Logger == nil {
		cfg.Log.Logger = lg
	}
	copier, err := fetch.NewCopier(fetch.DefaultCopierConfig())
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:      cfg,
		lg:       lg,
		versions: wire.DefaultVersions(),
		copier:   copier,
		stopping: make(chan struct{}),
		conns:    map[*conn]struct{}{},
		kick:     make(chan struct{}, 1),
		pids:     newPIDAllocator(),

		clockBase: time.Now(),
	}
	n.queued.avail = cfg.MaxQueuedRequestBytes
	if cfg.Client.Enabled() {
		if n.tlsConf, err = loadTLS(cfg.ClientTLS); err != nil {
			return nil, err
		}
	}
	n.metrics = newMetrics(n)
	return n, nil
}

func (n *Node) registry() *registry { return n.reg.Load() }

// ClusterID returns the cluster id stored in the data dir (empty until the broker first registered).
func (n *Node) ClusterID() string { return n.identity().ClusterID }

// Addrs returns the bound listener addresses; valid after Start returned nil.
func (n *Node) Addrs() Addrs {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrs
}

// Start opens the data dir (recovering every partition log and its producer state), binds the
// listeners and starts serving. It returns once everything is listening; the node then runs until
// Shutdown. On error everything opened so far is closed again.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != stateNew {
		return ErrStarted
	}
	n.state = stateStarted
	defer func() {
		if err != nil {
			n.state = stateStopped
			close(n.stopping)
			n.closeListenersLocked()
			n.stopCluster(false)
			if r := n.reg.Load(); r != nil {
				_ = r.closeAll()
			}
			_ = n.dirLock.Unlock()
		}
	}()
	if err := os.MkdirAll(n.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("node: data dir: %w", err)
	}
	// One process per data directory: a second broker (or a restart while a frozen one still
	// runs) would write the same logs and raft WAL, and could register while the first held a
	// leadership lease.
	lock, err := fsutil.LockFile(filepath.Join(n.cfg.DataDir, dataDirLockFile))
	if err != nil {
		return fmt.Errorf("node: data dir %s is in use: %w", n.cfg.DataDir, err)
	}
	n.dirLock = lock
	reg := newRegistry(n.cfg.DataDir, n.cfg.Log, n.cfg.NodeID, n.lg)
	n.reg.Store(reg)

	if n.cfg.Client.Enabled() {
		l, err := n.listen("client", n.cfg.Client, true)
		if err != nil {
			return err
		}
		n.addrs.Client = l.ln.Addr().String()
	}
	if n.cfg.ClientPlain.Enabled() {
		l, err := n.listen("client_plain", n.cfg.ClientPlain, false)
		if err != nil {
			return err
		}
		n.addrs.ClientPlain = l.ln.Addr().String()
	}
	if n.cfg.HTTP.Enabled() {
		ln, err := net.Listen("tcp", n.cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("node: http listener: %w", err)
		}
		n.httpLn = ln
		n.addrs.HTTP = ln.Addr().String()
	}
	if err := n.startCluster(ctx); err != nil {
		return err
	}
	if n.singleVoter() {
		// One voter: the metadata is local, so Start returns with every stored topic open and led.
		wctx := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, max(30*time.Second, 5*n.cfg.SessionTimeout))
			defer cancel()
		}
		if err := n.waitFor(wctx, n.caughtUp); err != nil {
			return fmt.Errorf("node: waiting for the metadata log: %w", err)
		}
	}
	if n.httpLn != nil {
		ln := n.httpLn
		n.httpSrv = n.newHTTPServer()
		n.bgWG.Add(1)
		go func() {
			defer n.bgWG.Done()
			if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.lg.Error("http server", "err", err)
			}
		}()
	}
	for _, l := range n.listeners {
		n.bgWG.Add(1)
		go func() {
			defer n.bgWG.Done()
			n.acceptLoop(l)
		}()
	}
	n.bgWG.Add(1)
	go func() {
		defer n.bgWG.Done()
		n.maintenance()
	}()
	n.ready.Store(true)
	n.lg.Info("node started", "cluster_id", n.ClusterID(), "client", n.addrs.Client,
		"client_plain", n.addrs.ClientPlain, "http", n.addrs.HTTP, "internal", n.addrs.Internal,
		"gossip", n.addrs.Gossip, "voters", n.cfg.voters(), "topics", reg.topicCount())
	return nil
}

// listener is a bound Kafka listener and what it advertises.
type listener struct {
	name    string // metric label
	ln      net.Listener
	tls     bool
	advHost string
	advPort int32
}

func (n *Node) listen(name string, cfg Listener, useTLS bool) (*listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("node: %s listener: %w", name, err)
	}
	l := &listener{name: name, ln: ln, tls: useTLS}
	bound := ln.Addr().(*net.TCPAddr)
	l.advHost = cfg.AdvertisedHost
	if l.advHost == "" {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			if h, err := os.Hostname(); err == nil && h != "" {
				host = h
			} else {
				host = "localhost"
			}
		}
		l.advHost = host
	}
	l.advPort = int32(bound.Port)
	if cfg.AdvertisedPort != 0 {
		l.advPort = int32(cfg.AdvertisedPort)
	}
	n.listeners = append(n.listeners, l)
	return l, nil
}

func (n *Node) acceptLoop(l *listener) {
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			select {
			case <-n.stopping:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			n.lg.Warn("accept", "listener", l.name, "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-n.stopping:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		c := n.newConn(nc, l)
		n.mu.Lock()
		if n.state != stateStarted {
			n.mu.Unlock()
			nc.Close()
			return
		}
		n.conns[c] = struct{}{}
		n.connWG.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.connWG.Done()
			c.serve()
			n.mu.Lock()
			delete(n.conns, c)
			n.mu.Unlock()
		}()
	}
}

func (n *Node) closeListenersLocked() {
	for _, l := range n.listeners {
		l.ln.Close()
	}
	if n.httpLn != nil && n.httpSrv == nil {
		n.httpLn.Close()
	}
}

// Shutdown stops the node like http.Server.Shutdown: it stops accepting, lets every connection finish
// the requests it has already read (long-polling fetches return at once), then snapshots producer
// state and flushes and closes every log. When ctx ends first (or, if ctx has no deadline, after
// Config.ShutdownTimeout) remaining connections are closed forcibly; logs are closed either way and
// ctx's error is returned. Calling Shutdown again, or before Start, is a no-op.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	started := n.state == stateStarted
	n.mu.Unlock()
	var csErr error
	if started {
		csErr = n.controlledShutdown(ctx)
		if csErr != nil {
			n.lg.Warn("controlled shutdown incomplete; stopping anyway", "err", csErr)
		}
	}
	n.mu.Lock()
	if n.state != stateStarted {
		n.state = stateStopped
		n.mu.Unlock()
		return nil
	}
	n.state = stateStopped
	n.ready.Store(false)
	close(n.stopping)
	n.closeListenersLocked()
	for c := range n.conns {
		c.stopReading()
	}
	n.mu.Unlock()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ShutdownTimeout)
		defer cancel()
	}
	var errs []error
	drained := make(chan struct{})
	go func() {
		n.connWG.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
		n.mu.Lock()
		for c := range n.conns {
			c.nc.Close()
		}
		n.mu.Unlock()
		<-drained
	}
	if n.httpSrv != nil {
		hctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := n.httpSrv.Shutdown(hctx); err != nil {
			n.httpSrv.Close()
		}
		cancel()
	}
	n.bgWG.Wait()
	n.stopCluster(true)
	if r := n.reg.Load(); r != nil {
		if err := r.closeAll(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.dirLock.Unlock(); err != nil {
		errs = append(errs, err)
	}
	n.lg.Info("node stopped")
	return errors.Join(errs...)
}

// maintenance runs retention and producer-state snapshots until shutdown.
func (n *Node) maintenance() {
	ret := time.NewTicker(n.cfg.RetentionCheckInterval)
	defer ret.Stop()
	snap := time.NewTicker(n.cfg.ProducerSnapshotInterval)
	defer snap.Stop()
	for {
		select {
		case <-n.stopping:
			return
		case <-ret.C:
			for _, p := range n.registry().partitions() {
				// Only what every ISR member has (below the high watermark) may be deleted.
				if deleted, err := p.Log().EnforceRetentionBelow(p.HighWatermark()); err != nil {
					p.Logger().Warn("retention", "err", err)
				} else if deleted > 0 {
					p.Logger().Info("retention deleted segments", "segments", deleted, "log_start_offset", p.Log().LogStartOffset())
				}
			}
		case <-snap.C:
			for _, p := range n.registry().partitions() {
				if err := p.Snapshot(); err != nil {
					p.Logger().Warn("producer snapshot", "err", err)
				}
			}
		}
	}
}

func loadTLS(f TLSFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("node: client TLS: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.ClientCAFile != "" {
		pool, err := certs.LoadPool(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("node: client CA: %w", err)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if f.RequireClientCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return conf, nil
}

// singleVoter reports a one-voter metadata quorum that is this node.
func (n *Node) singleVoter() bool {
	v := n.cfg.voters()
	return len(v) == 1 && v[0] == n.cfg.NodeID
}

// caughtUp reports readiness of the metadata plane: a raft leader is known, this broker's current
// registration is in the image and unfenced, the local replicas reflect the newest applied image,
// and the controller's lease lets it accept writes as a leader.
func (n *Node) caughtUp() bool {
	if n.raft == nil || n.raft.LeaderID() == 0 {
		return false
	}
	img := n.mm.Image()
	return n.mayLead(img) && n.registry().image().Index() == img.Index() && n.leaseValid()
}

// kill stops the node abruptly, as a crash would (test hook): no controlled shutdown, no gossip
// leave; listeners and connections are closed, the raft, gossip, heartbeat and reconciler
// goroutines cancelled and the logs closed.
func (n *Node) kill() {
	n.mu.Lock()
	if n.state != stateStarted {
		n.mu.Unlock()
		return
	}
	n.state = stateStopped
	n.ready.Store(false)
	close(n.stopping)
	n.closeListenersLocked()
	for c := range n.conns {
		c.nc.Close()
	}
	n.mu.Unlock()
	n.stopCluster(false)
	n.connWG.Wait()
	if n.httpSrv != nil {
		n.httpSrv.Close()
	}
	n.bgWG.Wait()
	if r := n.reg.Load(); r != nil {
		_ = r.closeAll()
	}
}
