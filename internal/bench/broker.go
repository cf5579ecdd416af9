package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrBrokerExited reports a broker process that ended before it was stopped.
var ErrBrokerExited = errors.New("bench: broker exited")

// BrokerSpec says how to start one broker process.
type BrokerSpec struct {
	Binary          string // the sluice executable
	DataDir         string
	CertFile        string // TLS listener certificate and key (PEM)
	KeyFile         string
	DisableSendfile bool
	LogPath         string        // broker stdout+stderr go here
	ReadyTimeout    time.Duration // 0 = 60s
	ExtraArgs       []string
}

// Broker is a running broker process with its listener addresses.
type Broker struct {
	PlainAddr string // plaintext Kafka listener (sendfile path unless DisableSendfile)
	TLSAddr   string // TLS Kafka listener (copying path)
	HTTPAddr  string
	spec      BrokerSpec
	args      []string // the command line after Binary, for Restart
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has been reaped
	waitErr   error
}

// freePorts reserves n loopback ports by listening on port 0 and closing the
// listeners. Another process could take one before the broker binds it;
// StartBroker retries with fresh ports when the broker exits early.
func freePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("bench: reserve port: %w", err)
		}
		lns = append(lns, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// StartBroker starts `sluice broker` with fresh loopback ports and waits for
// its /readyz to answer 200.
func StartBroker(ctx context.Context, spec BrokerSpec) (*Broker, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		b, err := startBroker(ctx, spec)
		if err == nil {
			return b, nil
		}
		lastErr = err
		if !errors.Is(err, ErrBrokerExited) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startBroker(ctx context.Context, spec BrokerSpec) (*Broker, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	b := &Broker{PlainAddr: ports[0], TLSAddr: ports[1], HTTPAddr: ports[2], spec: spec}
	args := []string{"broker",
		"--node-id", "1",
		"--data-dir", spec.DataDir,
		"--client-plain.addr", b.PlainAddr,
		"--client.addr", b.TLSAddr,
		"--client.cert", spec.CertFile,
		"--client.key", spec.KeyFile,
		"--http.addr", b.HTTPAddr,
		"--log.durability", "never",
		"--log-level", "warn",
	}
	if spec.DisableSendfile {
		args = append(args, "--disable-sendfile")
	}
	args = append(args, spec.ExtraArgs...)
	if err := b.launch(ctx, args); err != nil {
		return nil, err
	}
	return b, nil
}

// launch starts `spec.Binary args...` and waits for its /readyz. The
// arguments are kept for Restart.
func (b *Broker) launch(ctx context.Context, args []string) error {
	spec := b.spec
	b.args = args
	logf, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("bench: broker log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "=== %s %q\n", spec.Binary, args)
	cmd := exec.Command(spec.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: start broker: %w", err)
	}
	done := make(chan struct{})
	b.cmd, b.done, b.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		b.waitErr = err // read only after done is closed
		close(done)
	}()
	timeout := spec.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if err := b.waitReady(ctx, timeout); err != nil {
		b.Kill()
		return err
	}
	return nil
}

// Restart starts an exited broker again with the same command line (and so
// the same ports and data dir) and waits for its /readyz.
func (b *Broker) Restart(ctx context.Context) error {
	select {
	case <-b.done:
	default:
		return fmt.Errorf("bench: restart of broker pid %d, which still runs", b.Pid())
	}
	return b.launch(ctx, b.args)
}

// Signal sends sig to the broker process (SIGSTOP freezes it, SIGCONT
// resumes it).
func (b *Broker) Signal(sig syscall.Signal) error {
	if err := b.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("bench: signal %v to broker pid %d: %w", sig, b.Pid(), err)
	}
	return nil
}

// waitReady polls /readyz until it answers 200, the process exits or the
// timeout passes.
func (b *Broker) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	url := "http://" + b.HTTPAddr + "/readyz"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("bench: readyz: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-b.done:
			return fmt.Errorf("%w before ready (%v); log %s:\n%s", ErrBrokerExited, b.waitErr, b.spec.LogPath, logTail(b.spec.LogPath))
		case <-ctx.Done():
			return fmt.Errorf("bench: broker not ready at %s after %v: %w; log %s:\n%s", url, timeout, ctx.Err(), b.spec.LogPath, logTail(b.spec.LogPath))
		case <-tick.C:
		}
	}
}

// FetchBytes scrapes /metrics for sluice_fetch_bytes_total{path="<path>"}:
// the record bytes the broker has sent by that write path (sendfile, copy,
// tls). A missing series reads as 0.
func (b *Broker) FetchBytes(ctx context.Context, path string) (float64, error) {
	v, err := b.Metrics(ctx, `sluice_fetch_bytes_total{path="`+path+`"}`)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// Metrics scrapes /metrics once and returns the value of each series (a
// metric name with its labels exactly as exposed); a missing series reads
// as 0.
func (b *Broker) Metrics(ctx context.Context, series ...string) ([]float64, error) {
	body, err := httpGet(ctx, "http://"+b.HTTPAddr+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("bench: metrics: %w", err)
	}
	out := make([]float64, len(series))
	for i, s := range series {
		if out[i], err = metricValue(body, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// httpGet returns the body of a 200 answer (at most 16 MiB), within 10s.
func httpGet(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// metricValue finds the sample line starting with series in a Prometheus
// text exposition and parses its value; 0 when absent.
func metricValue(body []byte, series string) (float64, error) {
	for _, line := range bytes.Split(body, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(series))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil {
			return 0, fmt.Errorf("bench: metrics: %s: %w", series, err)
		}
		return v, nil
	}
	return 0, nil
}

// Pid returns the broker's process id.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// CPU returns the CPU time the broker has used so far.
func (b *Broker) CPU() (time.Duration, error) { return ProcessCPU(b.Pid()) }

// Alive returns an error if the broker has exited.
func (b *Broker) Alive() error {
	select {
	case <-b.done:
		return fmt.Errorf("%w (%v); log %s:\n%s", ErrBrokerExited, b.waitErr, b.spec.LogPath, logTail(b.spec.LogPath))
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
func (b *Broker) Stop(timeout time.Duration) error {
	select {
	case <-b.done:
		return nil
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.done:
		var ee *exec.ExitError
		if b.waitErr != nil && !errors.As(b.waitErr, &ee) {
			return fmt.Errorf("bench: broker wait: %w", b.waitErr)
		}
		if b.waitErr != nil {
			return fmt.Errorf("bench: broker exit after SIGTERM: %w; log %s", b.waitErr, b.spec.LogPath)
		}
		return nil
	case <-t.C:
		b.Kill()
		return fmt.Errorf("bench: broker did not stop within %v after SIGTERM; killed", timeout)
	}
}

// Kill ends the process immediately and reaps it.
func (b *Broker) Kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// logTail returns the last lines of a log file for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// segmentFiles lists the .log segment files of partition 0 of topic in a
// broker data dir (<data>/<topic>-0/<20-digit base offset>.log), in offset
// order.
func segmentFiles(dataDir, topic string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dataDir, topic+"-0", "*.log"))
	if err != nil {
		return nil, fmt.Errorf("bench: segment files: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("bench: no segment files under %s", filepath.Join(dataDir, topic+"-0"))
	}
	return files, nil // Glob sorts, and zero-padded names sort by offset
}
