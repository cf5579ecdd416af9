package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-io/sluice/internal/certs"
	"github.com/sluice-io/sluice/internal/clusterfile"
	"github.com/sluice-io/sluice/internal/link"
)

// Port layout of a dev cluster: node i (1-based) uses basePort+10*(i-1)
// plus these offsets, so the first node's plaintext listener is Kafka's
// familiar 9092.
const (
	portPlain = iota
	portTLS
	portHTTP
	portInternal
	portGossip
	portStride = 10
)

// devVoters is how many of the dev cluster's nodes vote in raft; the rest
// follow the metadata log as learners.
const devVoters = 3

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice dev [flags]
Starts a local cluster: one broker process per node on 127.0.0.1, a throw-away
CA and server certificate for the TLS listener, and <data-dir>/cluster.json.
Ctrl-C stops it; running it again reuses the data.
flags:
`)
		fs.PrintDefaults()
	}
	nodes := fs.Int("nodes", 3, "number of broker processes (the first three are raft voters)")
	dataDir := fs.String("data-dir", defaultDevDir, "where node data, TLS material and cluster.json live")
	basePort := fs.Int("base-port", 9092, "first node's plaintext port; node i adds 10*(i-1); TLS is +1, HTTP +2, internal +3, gossip +4")
	fresh := fs.Bool("fresh", false, "delete the data directory first")
	partitions := fs.Int("default-partitions", 1, "partitions of auto-created topics")
	var lf logFlags
	lf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("dev takes no arguments, got %q", pos)
	}
	if *nodes < 1 || *nodes > 64 {
		return usagef("--nodes %d: want 1..64", *nodes)
	}
	if *basePort < 1 || *basePort+portStride*(*nodes) > 65535 {
		return usagef("--base-port %d does not leave room for %d nodes", *basePort, *nodes)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate own binary: %w", err)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if *fresh {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("--fresh: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfPath := filepath.Join(dir, clusterfile.Name)
	clusterID := ""
	if old, err := clusterfile.Read(cfPath); err == nil {
		clusterID = old.ClusterID
		if err := refuseRunning(old); err != nil {
			return err
		}
		if len(old.Nodes) != *nodes {
			// The raft voters are fixed when a cluster is first started; restarting the same data
			// with another node count would bootstrap new voters beside the existing log.
			return usagef("%s holds a %d-node cluster; run with --nodes %d, or start over with --fresh", dir, len(old.Nodes), len(old.Nodes))
		}
	}
	if clusterID == "" {
		clusterID = randomID()
	}
	tlsDir := filepath.Join(dir, "tls")
	files := certs.DevFiles(tlsDir)
	if !allExist(files.CA, files.ServerCert, files.ServerKey, files.ClientCert, files.ClientKey) {
		if files, err = certs.WriteDev(tlsDir); err != nil {
			return err
		}
	}

	secretFile := filepath.Join(dir, "cluster.secret")
	if _, err := os.Stat(secretFile); err != nil {
		if _, err := link.GenerateSecretFile(secretFile); err != nil {
			return err
		}
	}

	cf := &clusterfile.File{
		Version:        clusterfile.Version,
		ClusterID:      clusterID,
		CAFile:         files.CA,
		ClientCertFile: files.ClientCert,
		ClientKeyFile:  files.ClientKey,
		SecretFile:     secretFile,
	}
	var voters, seeds []string
	for i := 1; i <= *nodes; i++ {
		if i <= devVoters {
			voters = append(voters, strconv.Itoa(i))
		}
		seeds = append(seeds, hostPort(*basePort+portStride*(i-1)+portGossip))
	}
	for i := 1; i <= *nodes; i++ {
		base := *basePort + portStride*(i-1)
		n := clusterfile.Node{
			ID:          int32(i),
			WorkDir:     wd,
			DataDir:     filepath.Join(dir, fmt.Sprintf("node-%d", i)),
			ClientPlain: hostPort(base + portPlain),
			Client:      hostPort(base + portTLS),
			HTTP:        hostPort(base + portHTTP),
			Internal:    hostPort(base + portInternal),
			Gossip:      hostPort(base + portGossip),
		}
		n.LogFile = filepath.Join(n.DataDir, "broker.log")
		for _, a := range []string{n.ClientPlain, n.Client, n.HTTP, n.Internal, n.Gossip} {
			if err := portFree(a); err != nil {
				return err
			}
		}
		n.Argv = []string{exe, "broker",
			"--node-id", strconv.Itoa(i),
			"--cluster-id", clusterID,
			"--data-dir", n.DataDir,
			"--client.addr", n.Client,
			"--client.cert", files.ServerCert,
			"--client.key", files.ServerKey,
			"--client.ca", files.CA,
			"--client-plain.addr", n.ClientPlain,
			"--http.addr", n.HTTP,
			"--internal.addr", n.Internal,
			"--gossip.addr", n.Gossip,
			"--seeds", strings.Join(seeds, ","),
			"--cluster-secret-file", secretFile,
			"--initial-voters", strings.Join(voters, ","),
			"--auto-create-topics=true",
			"--default-partitions", strconv.Itoa(*partitions),
			"--log-level", lf.level,
			"--log-format", lf.format,
		}
		cf.Nodes = append(cf.Nodes, n)
	}
	cf.SetBootstrap()

	start := time.Now()
	procs := make([]*proc, len(cf.Nodes))
	stopAll := func() {
		stopNodes(cfPath, cf, procs)
	}
	for i := range cf.Nodes {
		n := &cf.Nodes[i]
		p, err := startNode(n)
		if err != nil {
			stopAll()
			return err
		}
		procs[i] = p
		n.PID = p.cmd.Process.Pid
		fmt.Fprintf(os.Stderr, "started node %d (pid %d), log %s\n", n.ID, n.PID, n.LogFile)
	}
	if err := clusterfile.Write(cfPath, cf); err != nil {
		stopAll()
		return err
	}
	for i := range cf.Nodes {
		if err := waitReady(ctx, &cf.Nodes[i], procs[i], 30*time.Second); err != nil {
			stopAll()
			return err
		}
	}
	printDevBanner(cf, cfPath, time.Since(start))
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping the cluster...")
	stopAll()
	return nil
}

func printDevBanner(cf *clusterfile.File, cfPath string, took time.Duration) {
	self := "sluice"
	if rel, err := filepath.Rel(".", os.Args[0]); err == nil && strings.Contains(os.Args[0], string(filepath.Separator)) {
		self = rel
		if !strings.HasPrefix(self, ".") && !filepath.IsAbs(self) {
			self = "./" + self
		}
	}
	rel := cfPath
	if r, err := filepath.Rel(".", cfPath); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	first := cf.Nodes[0]
	fmt.Printf(`
Sluice dev cluster %s: %d node(s) ready in %s
  cluster file   %s
  bootstrap TLS  %s
  bootstrap      %s (plaintext)
  CA file        %s
  metrics        http://%s/metrics
  status         %[9]s cluster status

Try it (in another terminal):
  %[9]s topic create demo --partitions 3
  printf 'hello\nworld\n' | %[9]s produce demo
  %[9]s consume demo --from-beginning -n 2
  kcat -b %[10]s -X security.protocol=ssl -X ssl.ca.location=%[7]s -t demo -C -e
  kcat -b %[11]s -t demo -C -e

Ctrl-C stops the cluster.
`, cf.ClusterID, len(cf.Nodes), took.Round(time.Millisecond), rel, cf.Bootstrap, cf.BootstrapPlain, cf.CAFile, first.HTTP,
		self, first.Client, first.ClientPlain)
}

// proc is a node process started by this `sluice dev`; done closes when it
// has exited and been reaped.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startNode(n *clusterfile.Node) (*proc, error) {
	if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(n.Argv[0], n.Argv[1:]...)
	cmd.Dir = n.WorkDir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group: a Ctrl-C in the terminal reaches `sluice dev`,
	// which then stops the nodes in order, instead of killing them all at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %d: %w", n.ID, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls the node's /readyz until it answers 200, the process
// exits, or the deadline passes.
func waitReady(ctx context.Context, n *clusterfile.Node, p *proc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	url := "http://" + n.HTTP + "/readyz"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("node %d exited during start; its log (%s) ends:\n%s", n.ID, n.LogFile, tail(n.LogFile, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d not ready after %s; its log (%s) ends:\n%s", n.ID, limit, n.LogFile, tail(n.LogFile, 20))
		}
	}
}

// stopNodes sends SIGTERM to every node named in the current cluster.json
// (a node restarted by a tool has a new pid there), waits for a graceful
// exit, and kills what is left after the limit.
func stopNodes(cfPath string, cf *clusterfile.File, procs []*proc) {
	pids := map[int]bool{}
	if cur, err := clusterfile.Read(cfPath); err == nil {
		for _, n := range cur.Nodes {
			if n.PID > 0 {
				pids[n.PID] = true
			}
		}
	}
	for _, n := range cf.Nodes {
		if n.PID > 0 {
			pids[n.PID] = true
		}
	}
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(35 * time.Second)
	for pid := range pids {
		for alive(pid, procs) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid, procs) {
			fmt.Fprintf(os.Stderr, "pid %d did not stop in time; killing it\n", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range procs {
		if p != nil {
			<-p.done
		}
	}
}

// alive reports whether pid still runs; our own children are known exited
// once reaped.
func alive(pid int, procs []*proc) bool {
	for _, p := range procs {
		if p != nil && p.cmd.Process.Pid == pid {
			select {
			case <-p.done:
				return false
			default:
				return true
			}
		}
	}
	return syscall.Kill(pid, 0) == nil
}

// refuseRunning stops a second `sluice dev` from fighting over a live cluster.
func refuseRunning(cf *clusterfile.File) error {
	for _, n := range cf.Nodes {
		if n.PID > 0 && syscall.Kill(n.PID, 0) == nil && processIsSluice(n.PID) {
			return fmt.Errorf("node %d of this dev cluster still runs (pid %d); stop it first (kill %d) or use another --data-dir", n.ID, n.PID, n.PID)
		}
	}
	return nil
}

func processIsSluice(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "broker")
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is in use (another cluster or Kafka?); pick other ports with --base-port: %w", addr, err)
	}
	return ln.Close()
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func allExist(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// randomID draws a cluster id in Kafka's format: 16 random bytes, base64url
// without padding.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}
