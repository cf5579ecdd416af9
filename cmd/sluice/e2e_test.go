package main

// End-to-end tests of the newcomer path: build the binary, run `sluice dev`
// as a separate process, then use the sluice CLI, kcat (librdkafka), Sarama
// and franz-go against it over both listeners, the way the quick start does.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/clusterfile"
	"github.com/sluice-io/sluice/internal/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sluiceBinary builds cmd/sluice once per test process.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeBasePort finds a base port whose dev-cluster ports are all free.
func freeBasePort(t *testing.T, nodes int) int {
	t.Helper()
	for range 200 {
		// Below Linux's ephemeral range (32768-60999), so outgoing connections of
		// other tests cannot take a port between this check and the bind.
		base := 10000 + rand.IntN(22000)
		ok := true
		for i := 0; i < nodes && ok; i++ {
			for off := 0; off < portGossip+1 && ok; off++ {
				ok = portFree(hostPort(base+portStride*i+off)) == nil
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

type devCluster struct {
	t       *testing.T
	bin     string
	dir     string
	cfPath  string
	cf      *clusterfile.File
	cmd     *exec.Cmd
	out     *testutil.Buffer // the dev process's stdout, read while it runs
	stopped bool
}

// startDev runs `sluice dev` and waits for its banner.
func startDev(t *testing.T, nodes int) *devCluster {
	t.Helper()
	bin := sluiceBinary(t)
	dir := filepath.Join(t.TempDir(), "dev")
	base := freeBasePort(t, nodes)
	cmd := exec.Command(bin, "dev", "--nodes", strconv.Itoa(nodes), "--data-dir", dir, "--base-port", strconv.Itoa(base))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devCluster{t: t, bin: bin, dir: dir, cfPath: filepath.Join(dir, clusterfile.Name), cmd: cmd, out: &testutil.Buffer{}}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.dumpLogs()
		}
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			d.out.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "Ctrl-C stops the cluster") { // the banner's last line
				ready <- nil
				signalled = true
			}
		}
		if !signalled {
			ready <- fmt.Errorf("sluice dev ended before ready: %v", sc.Err())
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			d.stop()
			t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice dev not ready after 60s\nstderr:\n%s", stderr.String())
	}
	cf, err := clusterfile.Read(d.cfPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cf = cf
	return d
}

func (d *devCluster) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		d.t.Errorf("sluice dev did not stop within 60s of SIGINT")
	}
}

// dumpLogs prints the end of every node's log, for a failed test.
func (d *devCluster) dumpLogs() {
	cf, err := clusterfile.Read(d.cfPath)
	if err != nil {
		d.t.Logf("no cluster.json: %v", err)
		return
	}
	for _, n := range cf.Nodes {
		d.t.Logf("node %d log (%s):\n%s", n.ID, n.LogFile, tail(n.LogFile, 40))
	}
}

// cli runs a sluice client command against the dev cluster.
func (d *devCluster) cli(stdin string, args ...string) (string, error) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "--cluster", d.cfPath)
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("sluice %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), nil
}

func (d *devCluster) tlsConfig(t *testing.T) *tls.Config {
	pem, err := os.ReadFile(d.cf.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in ca_file")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestDevQuickstart is the README path: dev cluster, topic create, produce
// from stdin, consume, over TLS (the CLI default) and plaintext.
func TestDevQuickstart(t *testing.T) {
	d := startDev(t, 1)
	for _, want := range []string{"kcat -b", "topic create demo", d.cf.Bootstrap} {
		if !strings.Contains(d.out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, d.out.String())
		}
	}
	// The banner's kcat commands work as printed.
	var kcatLines int
	for _, line := range strings.Split(d.out.String(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "kcat ") {
			continue
		}
		kcatLines++
		args := strings.Fields(strings.Replace(line, "-t demo -C -e", "-L", 1))
		if out := runKcat(t, "", args[1:]...); !strings.Contains(out, "broker 1 at") {
			t.Fatalf("banner command %q: %s", line, out)
		}
	}
	if kcatLines != 2 {
		t.Fatalf("banner has %d kcat commands, want 2", kcatLines)
	}
	n := d.cf.Nodes[0]
	if n.PID <= 0 || syscall.Kill(n.PID, 0) != nil {
		t.Fatalf("cluster.json pid %d is not running", n.PID)
	}
	if len(n.Argv) < 2 || n.Argv[1] != "broker" {
		t.Fatalf("argv = %q", n.Argv)
	}

	if out, err := d.cli("", "topic", "create", "demo", "--partitions", "3"); err != nil || !strings.Contains(out, "created topic demo") {
		t.Fatalf("topic create: %q %v", out, err)
	}
	if out, err := d.cli("", "topic", "list"); err != nil || !strings.Contains(out, "demo") {
		t.Fatalf("topic list: %q %v", out, err)
	}
	if out, err := d.cli("", "topic", "describe", "demo"); err != nil || strings.Count(out, "\n") < 4 {
		t.Fatalf("topic describe: %q %v", out, err)
	}
	if _, err := d.cli("", "topic", "create", "demo"); err == nil {
		t.Fatal("creating an existing topic succeeded")
	}

	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprintf("line-%03d", i))
	}
	// One partition keeps order comparable line by line.
	if _, err := d.cli("", "topic", "create", "ordered", "--partitions", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli(strings.Join(lines, "\n")+"\n", "produce", "ordered"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli("tail-a\ntail-b\n", "produce", "ordered", "--plaintext", "--acks", "1"); err != nil {
		t.Fatal(err)
	}
	want := strings.Join(append(lines, "tail-a", "tail-b"), "\n") + "\n"
	for _, mode := range [][]string{nil, {"--plaintext"}} {
		args := append([]string{"consume", "ordered", "--from-beginning", "-n", strconv.Itoa(len(lines) + 2)}, mode...)
		out, err := d.cli("", args...)
		if err != nil {
			t.Fatal(err)
		}
		if out != want {
			t.Fatalf("consume %v = %q, want %q", mode, out, want)
		}
	}
	if _, err := d.cli("", "topic", "delete", "demo"); err != nil {
		t.Fatal(err)
	}
	if out, err := d.cli("", "topic", "list"); err != nil || strings.Contains(out, "demo ") {
		t.Fatalf("after delete, topic list = %q %v", out, err)
	}

	d.stop()
	if err := waitGone(n.PID, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The voters were fixed when this data was first started: another node count is refused.
	out, err := exec.Command(d.bin, "dev", "--nodes", "3", "--data-dir", d.dir).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--nodes 1") {
		t.Fatalf("dev --nodes 3 on a 1-node data dir: %v\n%s", err, out)
	}
}

func waitGone(pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still running after %s", pid, limit)
		}
		time.Sleep(20 * time.Millisecond) // polling a foreign process: there is no channel to wait on
	}
	return nil
}
