package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// rawPeer is a running `bench raw-peer` process and the client end of its
// one connection. It is owned by one goroutine.
type rawPeer struct {
	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	logPath   string
	conns     []net.Conn
	rws       []io.ReadWriter // conns, or the TLS clients over them
	bufs      [][]byte        // receive buffers, one per connection, reused across rounds
	passBytes int64           // bytes of one pass (fetch modes)
}

// rawPeerSpec starts one raw peer.
type rawPeerSpec struct {
	Binary   string
	Mode     string
	Files    []string // fetch modes
	SinkFile string   // sink mode
	Chunk    int
	CertFile string // tls mode
	KeyFile  string
	TLS      *tls.Config // client side, tls mode
	ReadBuf  int         // receive buffer per connection (fetch modes)
	Conns    int         // connections (fetch modes); 0 = 1
	LogPath  string      // peer stderr
}

// startRawPeer starts the peer process, reads its address and connects.
func startRawPeer(ctx context.Context, spec rawPeerSpec) (_ *rawPeer, err error) {
	nconns := max(spec.Conns, 1)
	args := []string{"bench", "raw-peer", "--mode", spec.Mode, "--chunk", fmt.Sprint(spec.Chunk), "--conns", fmt.Sprint(nconns)}
	for _, f := range spec.Files {
		args = append(args, "--file", f)
	}
	if spec.SinkFile != "" {
		args = append(args, "--sink-file", spec.SinkFile)
	}
	if spec.Mode == peerTLS {
		args = append(args, "--cert", spec.CertFile, "--key", spec.KeyFile)
	}
	logf, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bench: raw-peer log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(spec.Binary, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: raw-peer: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start raw-peer: %w", err)
	}
	p := &rawPeer{cmd: cmd, done: make(chan struct{}), logPath: spec.LogPath}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, out) // the pipe must drain before Wait returns
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	var line string
	select {
	case line = <-lines:
	case <-p.done:
		return nil, fmt.Errorf("bench: raw-peer exited (%v): %s", p.waitErr, logTail(spec.LogPath))
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("bench: raw-peer did not report its address within 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var addr string
	if _, err := fmt.Sscanf(line, "listening %s %d", &addr, &p.passBytes); err != nil || p.passBytes < 0 {
		return nil, fmt.Errorf("bench: raw-peer said %q (%v); log: %s", line, err, logTail(spec.LogPath))
	}
	// Dial every connection before any TLS handshake: the peer accepts them
	// all before it serves one.
	d := net.Dialer{Timeout: 10 * time.Second}
	for range nconns {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("bench: raw-peer dial: %w", err)
		}
		p.conns = append(p.conns, c)
	}
	for _, c := range p.conns {
		var rw io.ReadWriter = c
		if spec.Mode == peerTLS {
			tc := tls.Client(c, spec.TLS)
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("bench: raw-peer tls handshake: %w", err)
			}
			rw = tc
		}
		p.rws = append(p.rws, rw)
		if spec.ReadBuf > 0 {
			p.bufs = append(p.bufs, make([]byte, spec.ReadBuf))
		}
	}
	return p, nil
}

// Pid returns the peer's process id.
func (p *rawPeer) Pid() int { return p.cmd.Process.Pid }

// CPU returns the CPU time the peer has used.
func (p *rawPeer) CPU() (time.Duration, error) { return ProcessCPU(p.Pid()) }

// Alive returns an error if the peer has exited.
func (p *rawPeer) Alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("bench: raw-peer exited (%v): %s", p.waitErr, logTail(p.logPath))
	default:
		return nil
	}
}

// Close ends the connection, which ends the peer; it is killed if it does
// not exit within 10s.
func (p *rawPeer) Close() error {
	p.closeConns()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

func (p *rawPeer) closeConns() {
	for _, c := range p.conns {
		c.Close()
	}
}

// guard applies ctx to the connections: its deadline, and closing them when
// ctx ends (which fails the peer too). The returned func undoes the latter.
func (p *rawPeer) guard(ctx context.Context) func() bool {
	dl, _ := ctx.Deadline() // zero: none
	for _, c := range p.conns {
		_ = c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, p.closeConns)
}

// fetchRound asks for passes over the peer's files on every connection in
// parallel and reads them into the reused buffers, keeping one request ahead
// so each connection stays full, until minDuration has passed (at least one
// pass per connection, at most maxPasses). It returns the bytes received
// and the elapsed time until the last connection finished.
func (p *rawPeer) fetchRound(ctx context.Context, minDuration time.Duration, maxPasses int, prog *progress) (int64, time.Duration, error) {
	defer p.guard(ctx)()
	start := time.Now()
	got := make([]int64, len(p.rws))
	errs := make([]error, len(p.rws))
	var wg sync.WaitGroup
	for i := range p.rws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = p.passes(i, start, minDuration, maxPasses, prog)
			if errs[i] != nil {
				p.closeConns() // the others would wait for a peer that is failing
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var total int64
	for _, n := range got {
		total += n
	}
	return total, elapsed, errors.Join(errs...)
}

// passes runs the request/receive loop of one connection.
func (p *rawPeer) passes(i int, start time.Time, minDuration time.Duration, maxPasses int, prog *progress) (int64, error) {
	rw, buf := p.rws[i], p.bufs[i]
	req := []byte{'P'}
	requested, received := 0, 0
	ask := func() error {
		requested++
		if _, err := rw.Write(req); err != nil {
			return fmt.Errorf("bench: raw request: %w", err)
		}
		return nil
	}
	if err := ask(); err != nil {
		return 0, err
	}
	if minDuration > 0 && maxPasses > 1 {
		if err := ask(); err != nil {
			return 0, err
		}
	}
	var got int64
	for received < requested {
		for left := p.passBytes; left > 0; {
			n, err := io.ReadFull(rw, buf[:min(int64(len(buf)), left)])
			got += int64(n)
			left -= int64(n)
			prog.add(int64(n))
			if err != nil {
				return got, fmt.Errorf("bench: raw receive: %w", err)
			}
		}
		received++
		if requested < maxPasses && time.Since(start) < minDuration {
			if err := ask(); err != nil {
				return got, err
			}
		}
	}
	return got, nil
}

// sinkRound sends size bytes from chunk (repeated) to a sink peer and waits
// for its acknowledgement that they are written to its file.
func (p *rawPeer) sinkRound(ctx context.Context, size int64, chunk []byte, prog *progress) (time.Duration, error) {
	defer p.guard(ctx)()
	conn := p.conns[0]
	start := time.Now()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(size))
	if _, err := conn.Write(hdr[:]); err != nil {
		return 0, fmt.Errorf("bench: raw sink: %w", err)
	}
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() { // write while the main goroutine waits for the ack, as a producer with requests in flight does
		defer wg.Done()
		for off := int64(0); off < size; {
			n, err := conn.Write(chunk[:min(int64(len(chunk)), size-off)])
			off += int64(n)
			prog.add(int64(n))
			if err != nil {
				werr = fmt.Errorf("bench: raw sink send: %w", err)
				conn.Close()
				return
			}
		}
	}()
	ack := make([]byte, 1)
	_, rerr := io.ReadFull(conn, ack)
	elapsed := time.Since(start)
	if rerr != nil {
		conn.Close()
	}
	wg.Wait()
	if werr != nil {
		return 0, werr
	}
	if rerr != nil {
		return 0, fmt.Errorf("bench: raw sink ack: %w", rerr)
	}
	return elapsed, nil
}

// fetchToFileRound asks for one pass over the peer's files on the first
// connection, reads it in buffer-sized chunks and writes each to a file at
// path (created or truncated, no fsync), as a follower appends each fetch
// response. It returns
// the bytes moved and the time until the last write returned.
func (p *rawPeer) fetchToFileRound(ctx context.Context, path string, prog *progress) (int64, time.Duration, error) {
	defer p.guard(ctx)()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: raw follower file: %w", err)
	}
	defer f.Close()
	rw, buf := p.rws[0], p.bufs[0]
	start := time.Now()
	if _, err := rw.Write([]byte{'P'}); err != nil {
		return 0, 0, fmt.Errorf("bench: raw request: %w", err)
	}
	var got int64
	for got < p.passBytes {
		n, err := io.ReadFull(rw, buf[:min(int64(len(buf)), p.passBytes-got)])
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return got, 0, fmt.Errorf("bench: raw follower write: %w", werr)
			}
			got += int64(n)
			prog.add(int64(n))
		}
		if err != nil {
			return got, 0, fmt.Errorf("bench: raw receive: %w", err)
		}
	}
	return got, time.Since(start), nil
}
