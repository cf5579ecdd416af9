package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Series the catch-up phase scrapes.
const (
	seriesLogEndSum     = "sluice_log_end_offset_sum"
	seriesReplicaRecv   = "sluice_replica_received_bytes_total"
	seriesReplicaServed = `sluice_replica_fetch_bytes_total{path="sendfile"}`
)

// catchUpPoll is how often the catching-up follower's /metrics is read.
// Its cost lands on the follower, not on the leader whose CPU is measured.
const catchUpPoll = 10 * time.Millisecond

// catchUp runs CatchUpRounds rounds of: a fresh RF=3 topic; one follower
// frozen with SIGSTOP; CatchUpBytes produced with acks=1; the other follower
// caught up; SIGCONT, and the time until the frozen follower's log end
// equals the leader's, with the leader's CPU; then the raw baseline, a peer
// process that sendfiles the leader's segment file of that topic to a
// socket while this process writes what it reads into a file.
func (r *replRunner) catchUp(ctx context.Context) error {
	if r.rc.CatchUpRounds == 0 {
		return nil
	}
	batch, err := BuildBatch(r.rc.BatchBytes, r.rc.ValueBytes, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	count := int((r.rc.CatchUpBytes + int64(len(batch.Bytes)) - 1) / int64(len(batch.Bytes)))
	res := &r.rep.CatchUp
	for i := range r.rc.CatchUpRounds {
		topic := fmt.Sprintf("catchup-%d", i)
		round, files, err := r.catchUpRound(ctx, topic, i, batch, count)
		if err != nil {
			return err
		}
		res.Rounds = append(res.Rounds, round)
		raw, err := r.rawCatchUp(ctx, i, files)
		if err != nil {
			return err
		}
		res.Raw = append(res.Raw, raw)
		if err := r.dropTopic(ctx, topic); err != nil {
			return err
		}
	}
	res.summarize()
	return nil
}

// catchUpRound measures one catch-up and returns it with the leader's
// segment files of the topic.
func (r *replRunner) catchUpRound(ctx context.Context, topic string, i int, batch Batch, count int) (CatchUpRound, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	label := fmt.Sprintf("catch-up [%d/%d]", i+1, r.rc.CatchUpRounds)
	r.prog.beginWait(label + ": topic")
	if err := r.topic(ctx, topic, 1); err != nil {
		return CatchUpRound{}, nil, err
	}
	leader, lp, controller, err := r.leader(ctx, topic)
	if err != nil {
		return CatchUpRound{}, nil, err
	}
	// Freeze a follower that is not the controller: freezing the raft
	// leader would add a controller election to the measurement.
	var victim, other *clusterNode
	for _, id := range lp.followers() {
		switch {
		case victim == nil && id != controller:
			victim = r.cl.node(id)
		default:
			other = r.cl.node(id)
		}
	}
	if victim == nil || other == nil {
		return CatchUpRound{}, nil, fmt.Errorf("bench: %s: followers %v, controller %d", topic, lp.followers(), controller)
	}
	round := CatchUpRound{Leader: leader.ID, Follower: victim.ID, Controller: controller}
	pc, err := dialKafka(ctx, leader.PlainAddr, nil)
	if err != nil {
		return round, nil, err
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	// The topic is empty and quiet: the follower's sum of log ends is its
	// starting point, and it must grow by exactly what is produced.
	m, err := victim.Metrics(ctx, seriesLogEndSum, seriesReplicaRecv)
	if err != nil {
		return round, nil, err
	}
	sum0, recv0 := int64(m[0]), m[1]
	if err := victim.freeze(); err != nil {
		return round, nil, err
	}
	frozen := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = victim.resume()
		}
	}()
	r.prog.begin(fmt.Sprintf("%s: load to leader %d (pid %d), follower %d frozen", label, leader.ID, leader.Pid(), victim.ID), int64(count)*int64(len(batch.Bytes)))
	if err := produceRaw(ctx, pc, topic, batch, count, r.rc.ProduceWindow, r.prog); err != nil {
		return round, nil, err
	}
	round.Bytes = int64(count) * int64(len(batch.Bytes))
	want := int64(count) * int64(batch.Records)
	r.prog.beginWait(fmt.Sprintf("%s: follower %d catches up on the load", label, other.ID))
	var outOfISR bool
	err = r.cl.waitFor(ctx, r.rc.PhaseTimeout, "the unfrozen follower caught up", func(sts []clusterStatus) (bool, string) {
		_, lp, ok := leaderOf(sts, topic, 0)
		if !ok {
			return false, "no leader"
		}
		if lp.LogEndOffset != want {
			return false, fmt.Sprintf("leader log end %d, want %d", lp.LogEndOffset, want)
		}
		outOfISR = !slices.Contains(lp.ISR, victim.ID)
		leo, _ := lp.follower(other.ID)
		return leo == want, fmt.Sprintf("follower %d at %d of %d", other.ID, leo, want)
	})
	if err != nil {
		return round, nil, err
	}
	round.FrozenSeconds = time.Since(frozen).Seconds()
	round.OutOfISRAtResume = outOfISR

	// Write the load back to disk first, so the catch-up (and the raw round
	// after it) starts with no dirty pages of this benchmark: what is
	// measured is page-cache throughput, not the kernel throttling writers
	// once three copies of the load pass the dirty thresholds.
	r.prog.beginWait(label + ": flushing the load to disk")
	flushStart := time.Now()
	if err := r.flushTopic(topic); err != nil {
		return round, nil, err
	}
	round.FlushSeconds = time.Since(flushStart).Seconds()
	lcpu0, err := leader.CPU()
	if err != nil {
		return round, nil, err
	}
	fcpu0, err := victim.CPU()
	if err != nil {
		return round, nil, err
	}
	served0, err := leader.Metrics(ctx, seriesReplicaServed)
	if err != nil {
		return round, nil, err
	}
	r.prog.begin(fmt.Sprintf("%s: follower %d", label, victim.ID), round.Bytes)
	t0 := time.Now()
	if err := victim.resume(); err != nil {
		return round, nil, err
	}
	resumed = true
	elapsed, err := waitCatchUp(ctx, victim, sum0+want, recv0, r.prog)
	if err != nil {
		return round, nil, err
	}
	lcpu1, err := leader.CPU()
	if err != nil {
		return round, nil, err
	}
	fcpu1, err := victim.CPU()
	if err != nil {
		return round, nil, err
	}
	served1, err := leader.Metrics(ctx, seriesReplicaServed)
	if err != nil {
		return round, nil, err
	}
	round.Seconds = elapsed.Seconds()
	round.MBps = float64(round.Bytes) / 1e6 / round.Seconds
	round.LeaderCPUSeconds = (lcpu1 - lcpu0).Seconds()
	round.FollowerCPUSeconds = (fcpu1 - fcpu0).Seconds()
	round.SendfileBytes = int64(served1[0] - served0[0])
	// The follower froze with a long-poll fetch parked at the leader, which
	// the load answered at once into its socket buffer: that response was
	// served (and counted) before the window. Anything far below Bytes means
	// another write path served the follower.
	if round.SendfileBytes < round.Bytes/2 {
		return round, nil, fmt.Errorf("bench: %s: leader %d counted %d bytes served by sendfile to followers, the follower caught up on %d",
			topic, leader.ID, round.SendfileBytes, round.Bytes)
	}
	r.prog.note("%s: %.1f MB in %.3fs = %.0f MB/s, leader CPU %.2fs (%.3f CPU-s/GB), follower CPU %.2fs; follower frozen %.1fs (out of ISR at resume: %v); %v since SIGCONT",
		label, float64(round.Bytes)/1e6, round.Seconds, round.MBps, round.LeaderCPUSeconds, round.LeaderCPUSeconds/(float64(round.SendfileBytes)/1e9),
		round.FollowerCPUSeconds, round.FrozenSeconds, round.OutOfISRAtResume, time.Since(t0).Round(time.Millisecond))
	// The leader's own view confirms it: the follower's next fetch reports its log end.
	err = r.cl.waitFor(ctx, 30*time.Second, "the leader to see the follower caught up", func(sts []clusterStatus) (bool, string) {
		_, lp, ok := leaderOf(sts, topic, 0)
		if !ok {
			return false, "no leader"
		}
		leo, _ := lp.follower(victim.ID)
		return leo == want && lp.LogEndOffset == want, fmt.Sprintf("follower %d at %d, leader at %d", victim.ID, leo, lp.LogEndOffset)
	})
	if err != nil {
		return round, nil, err
	}
	files, err := segmentFiles(leader.DataDir, topic)
	if err != nil {
		return round, nil, err
	}
	// The follower's copy too, before the raw round writes its own.
	r.prog.beginWait(label + ": flushing the follower's copy")
	return round, files, r.flushTopic(topic)
}

// flushTopic fdatasyncs the files of partition 0 of topic in every node's
// data dir (only this benchmark's files: nothing else on the machine is
// synced).
func (r *replRunner) flushTopic(topic string) error {
	for _, n := range r.cl.nodes {
		paths, err := filepath.Glob(filepath.Join(n.DataDir, topic+"-0", "*"))
		if err != nil {
			return fmt.Errorf("bench: flush: %w", err)
		}
		for _, p := range paths {
			if err := fdatasyncFile(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// fdatasyncFile opens path and fdatasyncs it; a file deleted meanwhile is
// fine.
func fdatasyncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: flush: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("bench: fdatasync %s: %w", path, err)
	}
	return nil
}

// waitCatchUp polls node's /metrics until its sum of log end offsets
// reaches target, adding the replica bytes it received to prog, and returns
// the time from the call to the first scrape that showed the target.
func waitCatchUp(ctx context.Context, node *clusterNode, target int64, recv0 float64, prog *progress) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(catchUpPoll)
	defer tick.Stop()
	last := recv0
	maxPolls := int(10 * time.Minute / catchUpPoll)
	for range maxPolls {
		m, err := node.Metrics(ctx, seriesLogEndSum, seriesReplicaRecv)
		if err == nil {
			prog.add(int64(m[1] - last))
			last = m[1]
			if int64(m[0]) >= target {
				if int64(m[0]) > target {
					return 0, fmt.Errorf("bench: node %d log ends sum to %d, want %d: something else was written", node.ID, int64(m[0]), target)
				}
				return time.Since(start), nil
			}
		}
		if aerr := node.Alive(); aerr != nil {
			return 0, aerr
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("bench: node %d did not catch up: %w (last error %v)", node.ID, ctx.Err(), err)
		case <-tick.C:
		}
	}
	return 0, fmt.Errorf("bench: node %d did not catch up in %d polls", node.ID, maxPolls)
}

// rawCatchUp is the raw baseline of one catch-up round: a peer process
// sendfiles files (the leader's segment of the round's topic, so the same
// bytes from the page cache) over loopback, and this process reads them
// BatchBytes at a time and writes each read to a file.
func (r *replRunner) rawCatchUp(ctx context.Context, i int, files []string) (CatchUpRaw, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rc.PhaseTimeout)
	defer cancel()
	peer, err := startRawPeer(ctx, rawPeerSpec{
		Binary: r.rc.Binary, Mode: peerSendfile, Files: files, Chunk: r.rc.RawChunk,
		ReadBuf: r.rc.BatchBytes, LogPath: filepath.Join(r.work, "raw-peer.log"),
	})
	if err != nil {
		return CatchUpRaw{}, err
	}
	defer peer.Close()
	path := filepath.Join(r.work, "raw-follower.bin")
	defer os.Remove(path) // drops its dirty pages
	label := fmt.Sprintf("%s [%d/%d]", RawSendfileToFile, i+1, r.rc.CatchUpRounds)
	r.prog.begin(label, peer.passBytes)
	pcpu0, err := peer.CPU()
	if err != nil {
		return CatchUpRaw{}, err
	}
	scpu0 := selfCPU()
	n, elapsed, err := peer.fetchToFileRound(ctx, path, r.prog)
	if err != nil {
		return CatchUpRaw{}, err
	}
	scpu := selfCPU() - scpu0
	pcpu1, err := peer.CPU()
	if err != nil {
		return CatchUpRaw{}, err
	}
	raw := CatchUpRaw{Bytes: n, Seconds: elapsed.Seconds(), MBps: float64(n) / 1e6 / elapsed.Seconds(),
		SenderCPUSeconds: (pcpu1 - pcpu0).Seconds(), ReceiverCPUSeconds: scpu.Seconds()}
	r.prog.note("%s: %.1f MB in %.3fs = %.0f MB/s, sender CPU %.2fs (%.3f CPU-s/GB), receiver CPU %.2fs",
		label, float64(n)/1e6, raw.Seconds, raw.MBps, raw.SenderCPUSeconds, raw.SenderCPUSeconds/(float64(n)/1e9), raw.ReceiverCPUSeconds)
	return raw, nil
}
