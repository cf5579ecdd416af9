package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-io/sluice/internal/link"
)

// clusterSize is the number of brokers the replication benchmark starts:
// all of them raft voters, as in `sluice dev`.
const clusterSize = 3

// cluster is a three-broker cluster of real processes, started the way
// `sluice dev` starts one (internal link, gossip, a cluster secret, every
// node a voter), on loopback ports reserved by binding port 0. It is owned
// by the goroutine that runs the benchmark.
type cluster struct {
	nodes []*clusterNode
}

// clusterNode is one broker of a cluster.
type clusterNode struct {
	ID int32
	*Broker
	Internal string
	Gossip   string
	DataDir  string
	// expectDown is set while the benchmark has killed the node on purpose,
	// frozen while it has stopped it with SIGSTOP (it cannot answer HTTP).
	expectDown bool
	frozen     bool
}

// startCluster starts the brokers with extra appended to every command line
// and waits until each answers /readyz and every node's image shows all
// brokers registered and unfenced.
func startCluster(ctx context.Context, binary, work string, extra []string, prog *progress) (*cluster, error) {
	secretFile := filepath.Join(work, "cluster.secret")
	if _, err := link.GenerateSecretFile(secretFile); err != nil {
		return nil, fmt.Errorf("bench: cluster secret: %w", err)
	}
	ports, err := freePorts(4 * clusterSize)
	if err != nil {
		return nil, err
	}
	c := &cluster{}
	var voters, seeds []string
	for i := range clusterSize {
		voters = append(voters, strconv.Itoa(i+1))
		seeds = append(seeds, ports[4*i+3])
	}
	for i := range clusterSize {
		id := int32(i + 1)
		n := &clusterNode{ID: id, Internal: ports[4*i+2], Gossip: ports[4*i+3],
			DataDir: filepath.Join(work, fmt.Sprintf("node-%d", id))}
		n.Broker = &Broker{PlainAddr: ports[4*i], HTTPAddr: ports[4*i+1], spec: BrokerSpec{
			Binary: binary, DataDir: n.DataDir, LogPath: filepath.Join(work, fmt.Sprintf("broker-%d.log", id)),
		}}
		c.nodes = append(c.nodes, n)
	}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	// Start all processes first: a node's readiness may wait for the raft
	// quorum, which needs the others running.
	errs := make(chan error, clusterSize)
	for _, n := range c.nodes {
		args := []string{"broker",
			"--node-id", strconv.Itoa(int(n.ID)),
			"--data-dir", n.DataDir,
			"--client-plain.addr", n.PlainAddr,
			"--http.addr", n.HTTPAddr,
			"--internal.addr", n.Internal,
			"--gossip.addr", n.Gossip,
			"--seeds", strings.Join(seeds, ","),
			"--cluster-secret-file", secretFile,
			"--initial-voters", strings.Join(voters, ","),
			"--log-level", "warn",
		}
		args = append(args, extra...)
		go func() { errs <- n.launch(ctx, args) }()
	}
	for range c.nodes {
		if lerr := <-errs; lerr != nil && err == nil {
			err = lerr
		}
	}
	if err != nil {
		return nil, err
	}
	prog.note("cluster of %d brokers ready (pids %d, %d, %d)", clusterSize, c.nodes[0].Pid(), c.nodes[1].Pid(), c.nodes[2].Pid())
	err = c.waitFor(ctx, 60*time.Second, "every broker registered and unfenced", func(sts []clusterStatus) (bool, string) {
		for _, st := range sts {
			if st.unfenced() != clusterSize || st.ControllerID < 0 {
				return false, fmt.Sprintf("node %d sees %d unfenced brokers, controller %d", st.NodeID, st.unfenced(), st.ControllerID)
			}
		}
		return true, ""
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// node returns the broker with id.
func (c *cluster) node(id int32) *clusterNode {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// stop resumes frozen brokers and stops them all with SIGTERM.
func (c *cluster) stop(timeout time.Duration) error {
	var errs []error
	for _, n := range c.nodes {
		if n.cmd != nil && n.Alive() == nil {
			_ = n.resume()
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range c.nodes {
		if n.cmd != nil {
			errs = append(errs, n.Stop(timeout))
		}
	}
	return errors.Join(errs...)
}

// kill ends every broker at once.
func (c *cluster) kill() {
	for _, n := range c.nodes {
		if n.cmd != nil {
			n.Kill()
		}
	}
}

// statuses reads /v1/cluster from every running broker that is not frozen.
func (c *cluster) statuses(ctx context.Context) ([]clusterStatus, error) {
	var out []clusterStatus
	for _, n := range c.nodes {
		if n.frozen || n.Alive() != nil {
			continue
		}
		st, err := n.status(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// waitFor polls every running broker's /v1/cluster every 50 ms until cond
// holds or limit passes; the error carries cond's last explanation.
func (c *cluster) waitFor(ctx context.Context, limit time.Duration, what string, cond func([]clusterStatus) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, lastErr := "", error(nil)
	for {
		sts, err := c.statuses(ctx)
		if err == nil {
			ok, why := cond(sts)
			if ok {
				return nil
			}
			last = why
		} else {
			lastErr = err
		}
		for _, n := range c.nodes {
			if n.cmd != nil && !n.expectDown && n.Alive() != nil {
				return n.Alive()
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for %s: %w (last seen: %s; last error: %v)", what, ctx.Err(), last, lastErr)
		case <-tick.C:
		}
	}
}

// leaderOf finds the broker leading topic/partition: the one that lists it
// under led_partitions with the highest leader epoch.
func leaderOf(sts []clusterStatus, topic string, partition int32) (int32, ledPartition, bool) {
	best, found := ledPartition{LeaderEpoch: -1}, false
	var id int32 = -1
	for _, st := range sts {
		for _, lp := range st.Led {
			if lp.Topic == topic && lp.Partition == partition && lp.LeaderEpoch > best.LeaderEpoch {
				best, id, found = lp, st.NodeID, true
			}
		}
	}
	return id, best, found
}

// fullISR reports whether every partition in [0, partitions) of topic has
// a leader whose ISR holds all replicas and whose followers have reached
// its log end.
func fullISR(sts []clusterStatus, topic string, partitions int32) (bool, string) {
	for p := range partitions {
		id, lp, ok := leaderOf(sts, topic, p)
		if !ok {
			return false, fmt.Sprintf("%s-%d has no leader", topic, p)
		}
		if len(lp.ISR) != clusterSize {
			return false, fmt.Sprintf("%s-%d leader %d ISR %v", topic, p, id, lp.ISR)
		}
		for _, f := range lp.Followers {
			if f.LogEndOffset != lp.LogEndOffset {
				return false, fmt.Sprintf("%s-%d follower %d at %d, leader %d at %d", topic, p, f.Replica, f.LogEndOffset, id, lp.LogEndOffset)
			}
		}
	}
	return true, ""
}

// clusterStatus is the part of a broker's /v1/cluster document
// (node.ClusterStatus) the benchmark reads.
type clusterStatus struct {
	NodeID       int32 `json:"node_id"`
	ControllerID int32 `json:"controller_id"`
	Brokers      []struct {
		ID     int32 `json:"id"`
		Fenced bool  `json:"fenced"`
	} `json:"brokers"`
	Led []ledPartition `json:"led_partitions"`
}

// ledPartition is a partition the reporting node leads.
type ledPartition struct {
	Topic         string  `json:"topic"`
	Partition     int32   `json:"partition"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	LogEndOffset  int64   `json:"log_end_offset"`
	HighWatermark int64   `json:"high_watermark"`
	ISR           []int32 `json:"isr"`
	Followers     []struct {
		Replica      int32 `json:"replica"`
		LogEndOffset int64 `json:"log_end_offset"`
		InISR        bool  `json:"in_isr"`
	} `json:"followers"`
}

// parseClusterStatus decodes a /v1/cluster document.
func parseClusterStatus(b []byte) (clusterStatus, error) {
	var st clusterStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return clusterStatus{}, fmt.Errorf("%w: /v1/cluster: %w", ErrProtocol, err)
	}
	if st.NodeID <= 0 {
		return clusterStatus{}, fmt.Errorf("%w: /v1/cluster without a node_id", ErrProtocol)
	}
	return st, nil
}

// unfenced counts the registered brokers this node sees unfenced.
func (st clusterStatus) unfenced() int {
	n := 0
	for _, b := range st.Brokers {
		if !b.Fenced {
			n++
		}
	}
	return n
}

// follower returns the leader's view of replica id's log end offset (-1:
// not fetched in this epoch; false: not a follower).
func (lp ledPartition) follower(id int32) (int64, bool) {
	for _, f := range lp.Followers {
		if f.Replica == id {
			return f.LogEndOffset, true
		}
	}
	return 0, false
}

// followers returns the replica ids other than the leader, in order.
func (lp ledPartition) followers() []int32 {
	var ids []int32
	for _, f := range lp.Followers {
		ids = append(ids, f.Replica)
	}
	slices.Sort(ids)
	return ids
}

// status reads the node's /v1/cluster.
func (n *clusterNode) status(ctx context.Context) (clusterStatus, error) {
	body, err := httpGet(ctx, "http://"+n.HTTPAddr+"/v1/cluster")
	if err != nil {
		return clusterStatus{}, fmt.Errorf("bench: node %d: %w", n.ID, err)
	}
	return parseClusterStatus(body)
}

// freeze stops the node with SIGSTOP.
func (n *clusterNode) freeze() error {
	if err := n.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	n.frozen = true
	return nil
}

// resume continues a frozen node with SIGCONT.
func (n *clusterNode) resume() error {
	if err := n.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	n.frozen = false
	return nil
}
