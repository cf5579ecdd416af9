package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-io/sluice/internal/clusterfile"
	"github.com/sluice-io/sluice/node"
)

func runCluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage:
  sluice cluster status [--http host:port,...] [--json]
  sluice cluster replace-voter --dead N --new M [--internal ID=host:port,...] [--secret-file F]
flags:
`)
		fs.PrintDefaults()
	}
	clusterPath := fs.String("cluster", "", "cluster.json (default "+defaultDevDir+"/"+clusterfile.Name+" or $SLUICE_CLUSTER)")
	httpAddrs := fs.String("http", "", "HTTP addresses of brokers, comma-separated (default: from cluster.json)")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	dead := fs.Int("dead", 0, "replace-voter: node id of the lost voter")
	newID := fs.Int("new", 0, "replace-voter: node id of the replacement (running, empty data directory)")
	internal := fs.String("internal", "", "replace-voter: brokers' internal listeners as ID=host:port, comma-separated (default: from cluster.json)")
	secretFile := fs.String("secret-file", "", "replace-voter: cluster secret file (default: from cluster.json)")
	timeout := fs.Duration("timeout", 30*time.Second, "limit for the whole command")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("cluster needs one subcommand: status or replace-voter")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cf := loadClusterFile(*clusterPath)
	switch pos[0] {
	case "status":
		addrs := splitList(*httpAddrs)
		if len(addrs) == 0 && cf != nil {
			for _, n := range cf.Nodes {
				addrs = append(addrs, n.HTTP)
			}
		}
		if len(addrs) == 0 {
			return usagef("no broker known: pass --http host:port or run a dev cluster")
		}
		return clusterStatus(ctx, addrs, *asJSON)
	case "replace-voter":
		if *dead <= 0 || *newID <= 0 || *dead == *newID {
			return usagef("replace-voter needs --dead N and a different --new M")
		}
		addrs, err := parseInternal(splitList(*internal))
		if err != nil {
			return err
		}
		secret := *secretFile
		if cf != nil {
			if len(addrs) == 0 {
				for _, n := range cf.Nodes {
					if n.ID != int32(*dead) && n.Internal != "" {
						addrs[n.ID] = n.Internal
					}
				}
			}
			if secret == "" {
				secret = cf.SecretFile
			}
		}
		if len(addrs) == 0 || secret == "" {
			return usagef("replace-voter needs --internal and --secret-file (or a cluster.json)")
		}
		return replaceVoter(ctx, addrs, secret, int32(*dead), int32(*newID))
	}
	return usagef("unknown cluster subcommand %q", pos[0])
}

func loadClusterFile(path string) *clusterfile.File {
	cfl := clientFlags{cluster: path}
	p := cfl.clusterPath()
	if p == "" {
		return nil
	}
	f, err := clusterfile.Read(p)
	if err != nil {
		return nil
	}
	return f
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// clusterStatus prints /v1/cluster from the first broker that answers, then the replication state
// of every partition as its leader reports it (each broker's own led partitions).
func clusterStatus(ctx context.Context, addrs []string, raw bool) error {
	var lastErr error
	for i, a := range addrs {
		body, err := httpGet(ctx, "http://"+a+"/v1/cluster")
		if err != nil {
			lastErr = err
			continue
		}
		if raw {
			_, err := os.Stdout.Write(body)
			return err
		}
		var st clusterStatusDoc
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		printStatus(os.Stdout, a, &st)
		led := st.Led
		for _, other := range addrs[i+1:] {
			led = append(led, replicationOf(ctx, other)...)
		}
		printReplication(os.Stdout, led)
		return nil
	}
	return fmt.Errorf("no broker answered: %w", lastErr)
}

// replicationOf returns the partitions the broker at an HTTP address leads (nil if it does not answer).
func replicationOf(ctx context.Context, addr string) []node.LedPartition {
	body, err := httpGet(ctx, "http://"+addr+"/v1/cluster")
	if err != nil {
		return nil
	}
	var st clusterStatusDoc
	if json.Unmarshal(body, &st) != nil {
		return nil
	}
	return st.Led
}

// printReplication prints follower lag per partition: every follower of partitions that lag or
// miss ISR members, or of every partition when there are few.
func printReplication(w io.Writer, led []node.LedPartition) {
	sort.Slice(led, func(i, j int) bool {
		if led[i].Topic != led[j].Topic {
			return led[i].Topic < led[j].Topic
		}
		return led[i].Partition < led[j].Partition
	})
	lagging := 0
	for _, p := range led {
		if partitionLags(p) {
			lagging++
		}
	}
	fmt.Fprintf(w, "replication: %d partitions reported by their leaders, %d with a lagging or out-of-sync follower\n", len(led), lagging)
	if len(led) == 0 || (len(led) > 20 && lagging == 0) {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TOPIC\tPARTITION\tLEADER EPOCH\tHW\tLEO\tFOLLOWER\tIN ISR\tLAG OFFSETS\tLAG TIME")
	for _, p := range led {
		if len(led) > 20 && !partitionLags(p) {
			continue
		}
		for _, f := range p.Followers {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%v\t%d\t%s\n", p.Topic, p.Partition, p.LeaderEpoch,
				p.HighWatermark, p.LogEndOffset, f.Replica, f.InISR, f.LagOffsets, lagTime(f.LagMillis))
		}
	}
	tw.Flush()
}

func partitionLags(p node.LedPartition) bool {
	for _, f := range p.Followers {
		if !f.InISR || f.LagOffsets > 0 {
			return true
		}
	}
	return false
}

// lagTime renders a follower's time since it was last caught up.
func lagTime(ms int64) string {
	switch {
	case ms < 0:
		return "never"
	case ms == 0:
		return "0s"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, nil
}

// clusterStatusDoc is the broker's /v1/cluster document.
type clusterStatusDoc = node.ClusterStatus

func printStatus(w io.Writer, from string, st *clusterStatusDoc) {
	fmt.Fprintf(w, "cluster %s (as seen by node %d at %s)\n", st.ClusterID, st.NodeID, from)
	fmt.Fprintf(w, "controller %d, raft term %d, applied index %d, voters %v, learners %v\n",
		st.ControllerID, st.Term, st.AppliedIndex, st.Voters, st.Learners)
	sort.Slice(st.Brokers, func(i, j int) bool { return st.Brokers[i].ID < st.Brokers[j].ID })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tEPOCH\tSTATE\tLEADERS\tRACK\tCLIENT")
	for _, b := range st.Brokers {
		state := "active"
		if b.Fenced {
			state = "fenced"
		}
		role := ""
		if b.ID == st.ControllerID {
			role = " (controller)"
		}
		fmt.Fprintf(tw, "%d%s\t%d\t%s\t%d\t%s\t%s\n", b.ID, role, b.Epoch, state, b.Leaders, dash(b.Rack), b.Client)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d topics, %d partitions, %d offline, %d under-replicated\n",
		st.Topics, st.Partitions, len(st.Offline), len(st.UnderReplicated))
	for _, p := range st.Offline {
		fmt.Fprintf(w, "  offline: %s[%d]\n", p.Topic, p.Partition)
	}
	for _, p := range st.UnderReplicated {
		fmt.Fprintf(w, "  under-replicated: %s[%d]\n", p.Topic, p.Partition)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
