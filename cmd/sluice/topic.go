package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/node"
)

func runTopic(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("topic", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage:
  sluice topic create NAME [--partitions N] [--replication-factor R] [--config k=v ...]
  sluice topic list
  sluice topic describe NAME...
  sluice topic delete NAME...
flags:
`)
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	partitions := fs.Int("partitions", 1, "partitions for create")
	fs.IntVar(partitions, "p", 1, "shorthand for --partitions")
	rf := fs.Int("replication-factor", -1, "replicas per partition for create (-1: the broker's default)")
	fs.IntVar(rf, "r", -1, "shorthand for --replication-factor")
	var configs stringList
	fs.Var(&configs, "config", "topic config name=value for create (repeatable)")
	fs.Var(&configs, "c", "shorthand for --config")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the cluster")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usagef("topic needs a subcommand")
	}
	opts, _, err := cf.options()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	sub, names := pos[0], pos[1:]
	switch sub {
	case "create":
		if len(names) != 1 {
			return usagef("topic create takes one NAME")
		}
		cfg := map[string]*string{}
		for _, kv := range configs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("--config %q: want name=value", kv)
			}
			cfg[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, int32(*partitions), int16(*rf), cfg, names[0])
		if err != nil {
			return err
		}
		if resp.Err != nil {
			return fmt.Errorf("create %s: %w%s", names[0], resp.Err, detail(resp.ErrMessage))
		}
		fmt.Printf("created topic %s (%d partitions, replication factor %d, id %s)\n", resp.Topic, resp.NumPartitions, resp.ReplicationFactor, resp.ID)
		return nil
	case "list":
		if len(names) != 0 {
			return usagef("topic list takes no NAME")
		}
		md, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICAS\tID")
		for _, t := range md.Sorted() {
			if t.Err != nil {
				fmt.Fprintf(tw, "%s\t-\t-\t%v\n", t.Topic, t.Err)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.Topic, len(t.Partitions), t.Partitions.NumReplicas(), t.ID)
		}
		return tw.Flush()
	case "describe":
		if len(names) == 0 {
			return usagef("topic describe needs a NAME")
		}
		md, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return err
		}
		cfgs, cfgErr := adm.DescribeTopicConfigs(ctx, names...)
		lags := replicationByPartition(ctx, cf)
		var failed error
		for _, name := range names {
			t, ok := md[name]
			if !ok || t.Err != nil {
				e := errors.New("not found")
				if ok {
					e = t.Err
				}
				fmt.Printf("%s: %v\n", name, e)
				failed = fmt.Errorf("describe: %s: %w", name, e)
				continue
			}
			fmt.Printf("topic %s  id %s  partitions %d\n", t.Topic, t.ID, len(t.Partitions))
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tOFFLINE\tHW\tFOLLOWER LAG (offsets/time)")
			for _, p := range t.Partitions.Sorted() {
				hw, lag := "-", "-"
				if lp, ok := lags[lagKey{name, p.Partition}]; ok {
					hw, lag = fmt.Sprint(lp.HighWatermark), followerLags(lp)
				}
				fmt.Fprintf(tw, "  %d\t%d\t%d\t%v\t%v\t%v\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR,
					p.OfflineReplicas, hw, lag)
			}
			tw.Flush()
			if cfgErr == nil {
				if rc, err := cfgs.On(name, nil); err == nil && rc.Err == nil {
					var lines []string
					for _, c := range rc.Configs {
						if c.Source == 5 || c.Source == 4 || c.Value == nil { // default and static broker values are noise here
							continue
						}
						lines = append(lines, fmt.Sprintf("  %s=%s", c.Key, *c.Value))
					}
					sort.Strings(lines)
					if len(lines) > 0 {
						fmt.Println("  configs:")
						fmt.Println(strings.Join(lines, "\n"))
					}
				}
			}
		}
		return failed
	case "delete":
		if len(names) == 0 {
			return usagef("topic delete needs a NAME")
		}
		resps, err := adm.DeleteTopics(ctx, names...)
		if err != nil {
			return err
		}
		var failed error
		for _, r := range resps.Sorted() {
			if r.Err != nil {
				fmt.Printf("%s: %v%s\n", r.Topic, r.Err, detail(r.ErrMessage))
				failed = fmt.Errorf("delete %s: %w", r.Topic, r.Err)
				continue
			}
			fmt.Printf("deleted topic %s\n", r.Topic)
		}
		return failed
	}
	return usagef("unknown topic subcommand %q (create, list, describe, delete)", sub)
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

type lagKey struct {
	topic     string
	partition int32
}

// replicationByPartition asks every broker of the cluster file (if there is one) which partitions it
// leads and how far their followers lag; partitions nobody reports show "-".
func replicationByPartition(ctx context.Context, cfl clientFlags) map[lagKey]node.LedPartition {
	out := map[lagKey]node.LedPartition{}
	cf := loadClusterFile(cfl.cluster)
	if cf == nil {
		return out
	}
	for _, n := range cf.Nodes {
		for _, lp := range replicationOf(ctx, n.HTTP) {
			out[lagKey{lp.Topic, lp.Partition}] = lp
		}
	}
	return out
}

// followerLags renders "replica:offsets/time" for each follower.
func followerLags(lp node.LedPartition) string {
	if len(lp.Followers) == 0 {
		return "(no followers)"
	}
	parts := make([]string, 0, len(lp.Followers))
	for _, f := range lp.Followers {
		parts = append(parts, fmt.Sprintf("%d:%d/%s", f.Replica, f.LagOffsets, lagTime(f.LagMillis)))
	}
	return strings.Join(parts, " ")
}
