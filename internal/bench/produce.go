package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceVersion caps the Produce version: v9 is the first flexible one and
// later versions add nothing this loop uses.
const produceVersion = 9

// produceRaw sends count copies of batch to partition 0 of topic with
// acks=1, keeping up to window requests in flight on c, and returns when
// every one is acknowledged.
func produceRaw(ctx context.Context, c *kconn, topic string, batch Batch, count, window int, prog *progress) error {
	return producePipelined(ctx, c, pipeSpec{topic: topic, batch: batch, count: count, window: window, acks: 1}, prog)
}

// pipeSpec is one pipelined produce run.
type pipeSpec struct {
	topic     string
	partition int32
	batch     Batch
	count     int   // requests
	window    int   // requests in flight at most
	acks      int16 // 1 or -1 (all)
	// interval paces the requests: request i is due at start + i*interval
	// (0: send as fast as the window allows).
	interval time.Duration
	// latencies, when non-nil (length count), receives each request's time
	// from when it was due (or sent, unpaced) to its acknowledgement: a
	// request held back by a full window counts the wait, so a slow broker
	// cannot hide its queueing.
	latencies []time.Duration
}

// producePipelined sends spec.count copies of spec.batch, keeping up to
// spec.window requests in flight on c, and returns when every one is
// acknowledged. The request frame is encoded once; only its correlation id
// changes between sends, so the client spends its time in write(2), not in
// encoding.
func producePipelined(ctx context.Context, c *kconn, spec pipeSpec, prog *progress) error {
	v, err := c.version(0, produceVersion)
	if err != nil {
		return err
	}
	if v < 3 {
		return fmt.Errorf("%w: broker serves Produce up to v%d, RecordBatch v2 needs v3", ErrProtocol, v)
	}
	if spec.latencies != nil && len(spec.latencies) != spec.count {
		return fmt.Errorf("bench: %d latency slots for %d requests", len(spec.latencies), spec.count)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = v
	req.Acks = spec.acks
	req.TimeoutMillis = 30000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = spec.topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition = spec.partition
	p.Records = spec.batch.Bytes
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	frame := c.fmt.AppendRequest(nil, req, 0)
	const corrAt = 8 // size i32, api key i16, version i16, then the correlation id
	firstCorr := c.corr + 1
	c.corr += int32(spec.count)
	c.deadline(ctx, 10*time.Minute)

	// due[i] (nanoseconds since base, monotonic) is written by the writer before request i is
	// sent and read by the reader after its response. The socket orders the
	// two, but the race detector does not see through it: atomics.
	var due []atomic.Int64
	base := time.Now()
	if spec.latencies != nil {
		due = make([]atomic.Int64, spec.count)
	}
	slots := make(chan struct{}, spec.window)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() { // the writer; the calling goroutine reads the acknowledgements
		defer wg.Done()
		start := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
		for i := range spec.count {
			at := time.Now()
			if spec.interval > 0 {
				at = start.Add(time.Duration(i) * spec.interval)
				if d := time.Until(at); d > 0 {
					timer.Reset(d)
					select {
					case <-timer.C:
					case <-stop:
						return
					case <-ctx.Done():
						werr = ctx.Err()
						c.nc.Close()
						return
					}
				}
			}
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			case <-ctx.Done():
				werr = ctx.Err()
				c.nc.Close()
				return
			}
			if due != nil {
				due[i].Store(int64(at.Sub(base)))
			}
			binary.BigEndian.PutUint32(frame[corrAt:], uint32(firstCorr+int32(i)))
			if _, err := c.nc.Write(frame); err != nil {
				werr = fmt.Errorf("bench: produce write: %w", err)
				c.nc.Close()
				return
			}
		}
	}()
	rerr := func() error {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(v)
		for i := range spec.count {
			f, err := c.readFrame()
			if err != nil {
				return fmt.Errorf("bench: produce response %d of %d: %w", i+1, spec.count, err)
			}
			if spec.latencies != nil {
				spec.latencies[i] = time.Since(base) - time.Duration(due[i].Load())
			}
			body, err := responseBody(f, firstCorr+int32(i), resp.IsFlexible())
			if err != nil {
				return err
			}
			resp.Default()
			if err := resp.ReadFrom(body); err != nil {
				return fmt.Errorf("%w: decode produce response: %w", ErrProtocol, err)
			}
			if err := produceError(resp); err != nil {
				return err
			}
			<-slots
			prog.add(int64(len(spec.batch.Bytes)))
		}
		return nil
	}()
	close(stop)
	if rerr != nil {
		c.nc.Close() // unblocks a writer stuck in write(2)
	}
	wg.Wait()
	if werr != nil {
		return werr
	}
	return rerr
}

// produceOnce sends one batch with acks to topic/partition and returns the
// partition's error code (0: acknowledged).
func produceOnce(ctx context.Context, c *kconn, topic string, partition int32, batch Batch, acks int16, timeout time.Duration) (int16, error) {
	v, err := c.version(0, produceVersion)
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = v
	req.Acks = acks
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition = partition
	p.Records = batch.Bytes
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp := kmsg.NewPtrProduceResponse()
	if err := c.roundTrip(ctx, req, resp); err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("%w: produce response with %d topics", ErrProtocol, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

func produceError(resp *kmsg.ProduceResponse) error {
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("%w: produce response with %d topics", ErrProtocol, len(resp.Topics))
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		return fmt.Errorf("%w: produce error code %d", ErrProtocol, code)
	}
	return nil
}
