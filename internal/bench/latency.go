package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// maxLatencyRequests bounds the requests of one latency point.
const maxLatencyRequests = 200_000

// latency measures the acks=all latency curve: for each configured fraction
// of the measured acks=all throughput, an open-loop producer sends one
// pre-built batch every interval (at most LatencyWindow unanswered) for
// LatencyDuration to a fresh RF=3 topic, and records each request's time
// from when it was due to its acknowledgement.
func (r *replRunner) latency(ctx context.Context) error {
	base, ok := r.rep.acksAllRaw()
	if !ok || base <= 0 || len(r.rc.LatencyFractions) == 0 {
		return nil
	}
	size := r.rc.LatencyBatchBytes
	if size == 0 {
		size = r.rc.BatchBytes
	}
	batch, err := BuildBatch(size, r.rc.ValueBytes, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	for i, f := range r.rc.LatencyFractions {
		pt, err := r.latencyPoint(ctx, i, f, base, batch)
		if err != nil {
			return err
		}
		r.rep.Latency = append(r.rep.Latency, pt)
	}
	return nil
}

func (r *replRunner) latencyPoint(ctx context.Context, i int, fraction, baseMBps float64, batch Batch) (LatencyPoint, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	topic := fmt.Sprintf("latency-%d", i)
	label := fmt.Sprintf("acks=all latency at %.0f%%", 100*fraction)
	r.prog.beginWait(label + ": topic")
	if err := r.topic(ctx, topic, 1); err != nil {
		return LatencyPoint{}, err
	}
	leader, _, _, err := r.leader(ctx, topic)
	if err != nil {
		return LatencyPoint{}, err
	}
	c, err := dialKafka(ctx, leader.PlainAddr, nil)
	if err != nil {
		return LatencyPoint{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := producePipelined(ctx, c, pipeSpec{topic: topic, batch: batch, count: 8, window: 1, acks: -1}, r.prog); err != nil {
		return LatencyPoint{}, err
	}
	target := fraction * baseMBps // MB/s
	interval := time.Duration(float64(len(batch.Bytes)) / (target * 1e6) * float64(time.Second))
	count := int(min(max(int64(r.rc.LatencyDuration/max(interval, 1)), 20), maxLatencyRequests))
	lat := make([]time.Duration, count)
	r.prog.begin(label, int64(count)*int64(len(batch.Bytes)))
	t0 := time.Now()
	err = producePipelined(ctx, c, pipeSpec{topic: topic, batch: batch, count: count, window: r.rc.LatencyWindow,
		acks: -1, interval: interval, latencies: lat}, r.prog)
	elapsed := time.Since(t0)
	if err != nil {
		return LatencyPoint{}, fmt.Errorf("bench: %s: %w", label, err)
	}
	pt := latencyPointOf(lat, len(batch.Bytes), batch.Records, elapsed)
	pt.Fraction, pt.TargetMBps, pt.IntervalMicros = fraction, target, float64(interval)/1e3
	r.prog.note("%s: offered %.0f MB/s (a %d B batch every %v), achieved %.0f MB/s; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms over %d requests",
		label, target, len(batch.Bytes), interval.Round(time.Microsecond), pt.AchievedMBps, pt.P50Millis, pt.P99Millis, pt.P999Millis, pt.MaxMillis, pt.Requests)
	return pt, r.dropTopic(ctx, topic)
}

// latencyPointOf summarizes one point's request latencies.
func latencyPointOf(lat []time.Duration, batchBytes, records int, elapsed time.Duration) LatencyPoint {
	ms := make([]float64, len(lat))
	for i, d := range lat {
		ms[i] = float64(d) / 1e6
	}
	slices.Sort(ms)
	pt := LatencyPoint{Requests: len(lat), BatchBytes: batchBytes, RecordsPerBatch: records,
		P50Millis: percentile(ms, 50), P90Millis: percentile(ms, 90), P99Millis: percentile(ms, 99),
		P999Millis: percentile(ms, 99.9)}
	if len(ms) > 0 {
		pt.MaxMillis = ms[len(ms)-1]
	}
	if s := elapsed.Seconds(); s > 0 {
		pt.AchievedMBps = float64(len(lat)) * float64(batchBytes) / 1e6 / s
	}
	return pt
}

// percentile returns the p-th percentile of sorted values by the
// nearest-rank method (the smallest value with at least p% of the values at
// or below it); 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
