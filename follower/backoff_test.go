package follower

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-io/sluice/wire"
)

// A leader that is only behind on metadata (a new leader epoch or topic it has not applied yet) is
// retried soon; other errors back the partition off for the whole Backoff.
func TestPartitionBackoff(t *testing.T) {
	cfg := Config{Backoff: time.Second}.withDefaults()
	f := newFetcher(cfg, 1, nil)
	k := Key{Partition: 3}
	a := Assignment{Leader: 1, LeaderEpoch: 7}
	f.set(k, a)
	lg := slog.New(slog.DiscardHandler)

	start := time.Now()
	f.partitionFailed(k, a, lg, &retrySoonError{code: wire.CodeUnknownLeaderEpoch})
	// Compared with the full backoff, not with the clock: a stalled test machine cannot fail it.
	if d := f.parts[k].retryAfter.Sub(start); d >= cfg.Backoff {
		t.Fatalf("UNKNOWN_LEADER_EPOCH backs off %v, want about %v", d, RetrySoonBackoff)
	}
	if d := f.untilRetry(start); d >= cfg.Backoff {
		t.Fatalf("the fetcher sleeps %v with a partition due in %v", d, RetrySoonBackoff)
	}
	f.partitionFailed(k, a, lg, errors.New("leader answered KAFKA_STORAGE_ERROR"))
	if d := f.parts[k].retryAfter.Sub(start); d < time.Second {
		t.Fatalf("a real error backs off %v, want the full second", d)
	}
	// A failure under an older assignment does not back off the new one.
	f.set(k, Assignment{Leader: 1, LeaderEpoch: 8})
	f.partitionFailed(k, a, lg, errors.New("old"))
	if !f.parts[k].retryAfter.IsZero() {
		t.Fatal("a stale failure backed off the new assignment")
	}
}
