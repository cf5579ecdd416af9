package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/bench"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runProduce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice produce TOPIC [flags]
Reads one record value per line from stdin, or with --count writes synthetic records.
flags:
`)
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	count := fs.Int64("count", 0, "write this many synthetic records instead of reading stdin")
	size := fs.Int("size", 100, "value size in bytes for --count")
	acks := fs.String("acks", "all", "acks: all, 1 or 0")
	keySep := fs.String("key-separator", "", "split each line at the first separator into key and value (e.g. ':')")
	partition := fs.Int("partition", -1, "write to this partition (default: by key, else sticky)")
	linger := fs.Duration("linger", 0, "batching delay (synthetic load likes 5ms)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("produce takes one TOPIC")
	}
	if *count < 0 || *size < 0 {
		return usagef("--count and --size must not be negative")
	}
	topic := pos[0]
	opts, _, err := cf.options()
	if err != nil {
		return err
	}
	opts = append(opts, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(*linger), kgo.AllowAutoTopicCreation())
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return usagef("--acks %q: want all, 1 or 0", *acks)
	}
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	p := &producer{cl: cl, partition: int32(*partition)}
	start := time.Now()
	if *count > 0 {
		err = p.synthetic(ctx, *count, *size)
	} else {
		err = p.lines(ctx, os.Stdin, *keySep)
	}
	if ferr := cl.Flush(ctx); err == nil {
		err = ferr
	}
	p.wg.Wait()
	if e := p.firstErr(); err == nil {
		err = e
	}
	el := time.Since(start)
	n, b := p.acked.Load(), p.bytes.Load()
	fmt.Fprintf(os.Stderr, "produced %d records (%s) to %s in %s: %.0f records/s, %s/s\n",
		n, bench.FormatBytes(b), topic, el.Round(time.Millisecond), float64(n)/el.Seconds(), bench.FormatBytes(int64(float64(b)/el.Seconds())))
	return err
}

type producer struct {
	cl        *kgo.Client
	partition int32
	wg        sync.WaitGroup
	acked     atomic.Int64
	bytes     atomic.Int64
	mu        sync.Mutex
	err       error
}

func (p *producer) send(ctx context.Context, r *kgo.Record) {
	if p.partition >= 0 {
		r.Partition = p.partition
	}
	p.wg.Add(1)
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		defer p.wg.Done()
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
			return
		}
		p.acked.Add(1)
		p.bytes.Add(int64(len(r.Key) + len(r.Value)))
	})
}

func (p *producer) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *producer) lines(ctx context.Context, r io.Reader, sep string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		rec := &kgo.Record{Value: []byte(line)}
		if sep != "" {
			if k, v, ok := strings.Cut(line, sep); ok {
				rec.Key, rec.Value = []byte(k), []byte(v)
			}
		}
		p.send(ctx, rec)
		if err := p.firstErr(); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (p *producer) synthetic(ctx context.Context, count int64, size int) error {
	value := make([]byte, size)
	if _, err := rand.Read(value); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	for i := int64(0); i < count; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.firstErr(); err != nil {
			return err
		}
		p.send(ctx, &kgo.Record{Value: value})
		select {
		case <-tick.C:
			n := p.acked.Load()
			fmt.Fprintf(os.Stderr, "  %d/%d records acknowledged (%.0f/s)\n", n, count, float64(n)/time.Since(start).Seconds())
		default:
		}
	}
	return nil
}
