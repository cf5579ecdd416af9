package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// newKgoProducer returns a franz-go client producing to partition 0 of
// topic with acks=1 and no compression, kgo's defaults otherwise (10 ms
// linger, one produce request in flight per broker): what a real Go
// producer achieves, batching records itself.
func newKgoProducer(addr, topic string, batchBytes int) (*kgo.Client, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), // idempotence needs acks=all
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(int32(batchBytes)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedBytes(256<<20),
	)
	if err != nil {
		return nil, fmt.Errorf("bench: kgo client: %w", err)
	}
	return cl, nil
}

// produceKgo writes records records with value value through cl and waits
// until all are acknowledged. It returns the first produce error.
func produceKgo(ctx context.Context, cl *kgo.Client, value []byte, records int64, prog *progress) error {
	var (
		wg       sync.WaitGroup
		firstErr atomic.Pointer[error]
	)
	for i := int64(0); i < records; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if firstErr.Load() != nil {
			break
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: value, Partition: 0}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			prog.add(int64(len(r.Value)))
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("bench: kgo flush: %w", err)
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("bench: kgo produce: %w", *p)
	}
	return nil
}
