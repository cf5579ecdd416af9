package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceVersion caps the Produce version: v9 is the first flexible one and
// later versions add nothing this loop uses.
const produceVersion = 9

// produceRaw sends count copies of batch to partition 0 of topic with
// acks=1, keeping up to window requests in flight on c, and returns when
// every one is acknowledged. The request frame is encoded once; only its
// correlation id changes between sends, so the client spends its time in
// write(2), not in encoding.
func produceRaw(ctx context.Context, c *kconn, topic string, batch Batch, count, window int, prog *progress) error {
	v, err := c.version(0, produceVersion)
	if err != nil {
		return err
	}
	if v < 3 {
		return fmt.Errorf("%w: broker serves Produce up to v%d, RecordBatch v2 needs v3", ErrProtocol, v)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = v
	req.Acks = 1
	req.TimeoutMillis = 30000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition = 0
	p.Records = batch.Bytes
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	frame := c.fmt.AppendRequest(nil, req, 0)
	const corrAt = 8 // size i32, api key i16, version i16, then the correlation id
	firstCorr := c.corr + 1
	c.corr += int32(count)
	c.deadline(ctx, 10*time.Minute)

	slots := make(chan struct{}, window)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() { // the writer; the calling goroutine reads the acknowledgements
		defer wg.Done()
		for i := range count {
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			case <-ctx.Done():
				werr = ctx.Err()
				c.nc.Close()
				return
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
		for i := range count {
			f, err := c.readFrame()
			if err != nil {
				return fmt.Errorf("bench: produce response %d of %d: %w", i+1, count, err)
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
			prog.add(int64(len(batch.Bytes)))
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

func produceError(resp *kmsg.ProduceResponse) error {
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("%w: produce response with %d topics", ErrProtocol, len(resp.Topics))
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		return fmt.Errorf("%w: produce error code %d", ErrProtocol, code)
	}
	return nil
}
