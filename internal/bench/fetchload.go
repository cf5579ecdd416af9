package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxEmptyFetches bounds consecutive fetches that return no whole batch
// below the end offset before the loop gives up.
const maxEmptyFetches = 100

// fetcher reads partition 0 of a topic over one connection with raw Fetch v12
// requests, one in flight, each response read into the connection's reused
// buffer and discarded after its batch headers are walked.
type fetcher struct {
	c     *kconn
	topic string
	wbuf  []byte
	req   *kmsg.FetchRequest
}

func newFetcher(c *kconn, topic string, maxBytes int32) (*fetcher, error) {
	v, err := c.version(1, fetchVersion)
	if err != nil {
		return nil, err
	}
	if v < fetchVersion {
		return nil, fmt.Errorf("%w: broker serves Fetch up to v%d, the benchmark needs v%d", ErrProtocol, v, fetchVersion)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	req.SessionID = 0
	req.SessionEpoch = -1 // sessionless
	t := kmsg.NewFetchRequestTopic()
	t.Topic = topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = 0
	p.CurrentLeaderEpoch = -1
	p.LastFetchedEpoch = -1
	p.LogStartOffset = -1
	p.PartitionMaxBytes = maxBytes
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return &fetcher{c: c, topic: topic, req: req}, nil
}

// fetchOnce fetches from offset and returns the bytes of whole batches
// received and the offset after the last one (offset itself when none).
func (f *fetcher) fetchOnce(offset int64) (int64, int64, error) {
	f.req.Topics[0].Partitions[0].FetchOffset = offset
	corr := f.c.nextCorr()
	f.wbuf = f.c.fmt.AppendRequest(f.wbuf[:0], f.req, corr)
	if _, err := f.c.nc.Write(f.wbuf); err != nil {
		return 0, offset, fmt.Errorf("bench: fetch write: %w", err)
	}
	frame, err := f.c.readFrame()
	if err != nil {
		return 0, offset, fmt.Errorf("bench: fetch read at offset %d: %w", offset, err)
	}
	body, err := responseBody(frame, corr, true)
	if err != nil {
		return 0, offset, err
	}
	p, err := parseFetchV12(body)
	if err != nil {
		return 0, offset, err
	}
	if p.TopErr != 0 || p.Err != 0 {
		return 0, offset, fmt.Errorf("%w: fetch %s-0 at %d: error %d/%d", ErrProtocol, f.topic, offset, p.TopErr, p.Err)
	}
	n, last, ok := batchSpan(p.Records)
	if !ok {
		return 0, offset, nil
	}
	if last < offset {
		return 0, offset, fmt.Errorf("%w: fetch at %d returned batches ending at %d", ErrProtocol, offset, last)
	}
	return int64(n), last + 1, nil
}

// pass reads [0, end) once, adding bytes to prog. It stops early (between
// requests) when stopAt is non-zero and has passed.
func (f *fetcher) pass(end int64, prog *progress, stopAt time.Time) (int64, bool, error) {
	var total int64
	empty := 0
	for off := int64(0); off < end; {
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			return total, false, nil
		}
		n, next, err := f.fetchOnce(off)
		if err != nil {
			return total, false, err
		}
		if n == 0 {
			if empty++; empty > maxEmptyFetches {
				return total, false, fmt.Errorf("%w: %d empty fetches at offset %d below end %d", ErrProtocol, empty, off, end)
			}
			continue
		}
		empty = 0
		total += n
		prog.add(n)
		off = next
	}
	return total, true, nil
}

// fetchLoad runs one fetcher per connection, each re-reading [0, end) until
// it has made at least one whole pass and minDuration has passed, or until
// maxPasses passes. It returns the bytes of whole batches read in total.
func fetchLoad(ctx context.Context, conns []*kconn, topic string, maxBytes int32, end int64, minDuration time.Duration, maxPasses int, prog *progress) (int64, error) {
	fs := make([]*fetcher, len(conns))
	for i, c := range conns {
		f, err := newFetcher(c, topic, maxBytes)
		if err != nil {
			return 0, err
		}
		c.deadline(ctx, 10*time.Minute)
		fs[i] = f
	}
	deadline := time.Now().Add(minDuration)
	var wg sync.WaitGroup
	totals := make([]int64, len(fs))
	errs := make([]error, len(fs))
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pass := 0; pass < maxPasses; pass++ {
				var stopAt time.Time
				if pass > 0 {
					stopAt = deadline
				}
				n, whole, err := f.pass(end, prog, stopAt)
				totals[i] += n
				if err != nil {
					errs[i] = err
					return
				}
				if !whole || time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for i := range fs {
		if errs[i] != nil {
			return 0, errs[i]
		}
		total += totals[i]
	}
	return total, nil
}
