package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Failover probing.
const (
	failoverTopic      = "failover"
	failoverPartitions = 3                    // one led by each broker, so a victim other than the controller exists
	probeInterval      = 5 * time.Millisecond // between a refused probe and the next, per survivor
	probeTimeout       = 10 * time.Second     // Produce timeout of one probe
	failoverLimit      = 30 * time.Second     // a sample gives up after this long
	maxProbes          = int(failoverLimit / probeInterval)
)

// failover kills a partition leader with SIGKILL FailoverSamples times and
// measures the time to the first acknowledged acks=all write on its
// successor, restarting the victim and waiting for a full ISR between
// samples.
func (r *replRunner) failover(ctx context.Context) error {
	if r.rc.FailoverSamples == 0 {
		return nil
	}
	r.prog.beginWait("failover: topic")
	if err := r.topic(ctx, failoverTopic, failoverPartitions); err != nil {
		return err
	}
	probe, err := BuildBatch(r.rc.ValueBytes+segmentHeaderSlack, r.rc.ValueBytes, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	for i := range r.rc.FailoverSamples {
		s, err := r.failoverSample(ctx, i, probe)
		if err != nil {
			return err
		}
		r.rep.Failover.Samples = append(r.rep.Failover.Samples, s)
	}
	r.rep.Failover.summarize()
	return nil
}

// segmentHeaderSlack is room for the batch header and one record's framing.
const segmentHeaderSlack = 128

func (r *replRunner) failoverSample(ctx context.Context, i int, probe Batch) (FailoverSample, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	label := fmt.Sprintf("failover [%d/%d]", i+1, r.rc.FailoverSamples)
	r.prog.beginWait(label + ": full ISR")
	var sts []clusterStatus
	err := r.cl.waitFor(ctx, 90*time.Second, "a full ISR on every partition and every broker unfenced", func(got []clusterStatus) (bool, string) {
		sts = got
		for _, st := range got {
			if st.unfenced() != clusterSize {
				return false, fmt.Sprintf("node %d sees %d unfenced brokers", st.NodeID, st.unfenced())
			}
		}
		return fullISR(got, failoverTopic, failoverPartitions)
	})
	if err != nil {
		return FailoverSample{}, err
	}
	// Kill the leader of a partition whose leader is not the controller, so
	// one sample measures one failure (as TestClusterLeaderKillElectsFromISR).
	controller := sts[0].ControllerID
	s := FailoverSample{Partition: -1, Controller: controller}
	for p := range int32(failoverPartitions) {
		id, lp, _ := leaderOf(sts, failoverTopic, p)
		if id != controller || s.Partition < 0 {
			s.Partition, s.Victim, s.EpochBefore = p, id, lp.LeaderEpoch
		}
		if id != controller {
			break
		}
	}
	victim := r.cl.node(s.Victim)
	var survivors []*clusterNode
	var conns []*kconn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, n := range r.cl.nodes {
		if n.ID == s.Victim {
			continue
		}
		c, err := dialKafka(ctx, n.PlainAddr, nil)
		if err != nil {
			return s, err
		}
		survivors, conns = append(survivors, n), append(conns, c)
	}
	r.prog.beginWait(fmt.Sprintf("%s: killed leader %d of %s-%d", label, s.Victim, failoverTopic, s.Partition))
	victim.expectDown = true
	killed := time.Now()
	victim.Kill()
	win, err := probeSuccessor(ctx, conns, survivors, s.Partition, probe, killed)
	if err != nil {
		return s, fmt.Errorf("bench: %s: %w", label, err)
	}
	s.Successor, s.FirstAckMillis, s.AcceptedSendMillis, s.LastRefusalMillis, s.Probes =
		win.node, ms(win.ack.Sub(killed)), ms(win.sent.Sub(killed)), ms(win.lastRefusal.Sub(killed)), win.probes
	r.prog.note("%s: leader %d of %s-%d killed; first acks=all write acknowledged by %d after %.0f ms (sent at %.0f ms; its last refusal at %.0f ms; %d probes)",
		label, s.Victim, failoverTopic, s.Partition, s.Successor, s.FirstAckMillis, s.AcceptedSendMillis, s.LastRefusalMillis, s.Probes)
	r.prog.beginWait(fmt.Sprintf("%s: restarting %d", label, s.Victim))
	if err := victim.Restart(ctx); err != nil {
		return s, err
	}
	victim.expectDown = false
	if sts, err := r.cl.statuses(ctx); err == nil {
		if _, lp, ok := leaderOf(sts, failoverTopic, s.Partition); ok {
			s.EpochAfter = lp.LeaderEpoch
		}
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// probeWin is the probe that got the first acknowledgement.
type probeWin struct {
	node        int32
	sent, ack   time.Time
	lastRefusal time.Time // the successor's last refusal before it (killed time if none)
	probes      int       // probes sent to the successor
}

// probeSuccessor sends one acks=all single-record Produce at a time to
// partition on every survivor, each retried probeInterval after a refusal,
// until one is acknowledged or failoverLimit passes.
func probeSuccessor(ctx context.Context, conns []*kconn, nodes []*clusterNode, partition int32, probe Batch, since time.Time) (probeWin, error) {
	ctx, cancel := context.WithTimeout(ctx, failoverLimit)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()
	var (
		mu   sync.Mutex
		win  probeWin
		won  bool
		errs = make([]error, len(conns))
		last = make([]string, len(conns))
		wg   sync.WaitGroup
	)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused := since
			timer := time.NewTimer(0)
			defer timer.Stop()
			for n := 1; n <= maxProbes; n++ {
				sent := time.Now()
				code, err := produceOnce(ctx, c, failoverTopic, partition, probe, -1, probeTimeout)
				now := time.Now()
				if ctx.Err() != nil {
					return // another probe won, or the limit passed
				}
				if err != nil {
					errs[i] = fmt.Errorf("node %d: %w", nodes[i].ID, err)
					return
				}
				if code == 0 {
					mu.Lock()
					if !won {
						won, win = true, probeWin{node: nodes[i].ID, sent: sent, ack: now, lastRefusal: refused, probes: n}
					}
					mu.Unlock()
					cancel()
					return
				}
				refused = now
				last[i] = fmt.Sprintf("node %d: error code %d", nodes[i].ID, code)
				timer.Reset(probeInterval)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}()
	}
	wg.Wait()
	if won {
		return win, nil
	}
	if err := errors.Join(errs...); err != nil {
		return probeWin{}, err
	}
	return probeWin{}, fmt.Errorf("no acknowledged write within %v (last answers: %v)", failoverLimit, last)
}
