package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batchtest"
	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog/controller"
	"github.com/sluice-io/sluice/wire"
)

func (d *devCluster) status(t *testing.T, from int32) clusterStatusDoc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := httpGet(ctx, "http://"+d.node(from).HTTP+"/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	var st clusterStatusDoc
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func brokerEpoch(st clusterStatusDoc, id int32) (int64, bool) {
	for _, b := range st.Brokers {
		if b.ID == id {
			return b.Epoch, b.Fenced
		}
	}
	return -1, true
}

// produceV8 is one acks=1 Produce v8 request (non-flexible, so the response header is just the
// correlation id) for topic/partition, framed.
func produceV8(topic string, partition int32) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 8
	req.Acks = 1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batchtest.Build(batchtest.Values("from-a-client-of-the-zombie"))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("zombie-test")).AppendRequest(nil, req, 1)
}

// readProduceV8 reads the answer to produceV8 and returns the partition's error code.
func readProduceV8(conn net.Conn) (int16, error) {
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return 0, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return 0, err
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 8
	if err := resp.ReadFrom(body[4:]); err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// A broker frozen (SIGSTOP) is fenced on gossip's dead verdict and replaced as
// leader; when it wakes up, even long before its session would have expired,
// it must not act on its old leadership or broker epoch: produce to it is
// refused, and a restarted process comes back only with a new broker epoch.
func TestClusterZombieFenced(t *testing.T) {
	d := startDev(t, 3)
	ctx := context.Background()
	createTopic(t, d.client(t), "zombie", 3, 3)
	var before brokerView
	waitFor(t, 10*time.Second, "topic visible", func() (bool, string) {
		v, err := metadataFrom(ctx, d.cf.Nodes[0].ClientPlain, "zombie")
		before = v
		return err == nil && len(v.Partitions) == 3, fmt.Sprint(err)
	})
	var part partView
	for _, p := range before.Partitions {
		if p.Leader != before.Controller {
			part = p
			break
		}
	}
	victim := d.node(part.Leader)
	var watcher int32
	for _, n := range d.cf.Nodes {
		if n.ID != victim.ID {
			watcher = n.ID
		}
	}
	oldEpoch, _ := brokerEpoch(d.status(t, watcher), victim.ID)
	// A client of the victim, connected before the freeze: its request will be waiting in the
	// socket when the victim wakes, so it is among the first things the zombie handles.
	conn, err := net.DialTimeout("tcp", victim.ClientPlain, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := syscall.Kill(victim.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozeAt := time.Now()
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(victim.PID, syscall.SIGCONT)
		}
	}()
	waitFor(t, 15*time.Second, "the frozen leader fenced and replaced", func() (bool, string) {
		v, err := metadataFrom(ctx, d.node(watcher).ClientPlain, "zombie")
		if err != nil {
			return false, err.Error()
		}
		p := v.Partitions[part.Partition]
		return p.Leader != victim.ID && p.Leader >= 0 && p.LeaderEpoch > part.LeaderEpoch, fmt.Sprintf("%+v", p)
	})
	// Wake it the moment its replacement is visible, well inside the 6 s session: gossip's dead
	// verdict fenced it, but only once the lease of its last acknowledged heartbeat had run out.
	t.Logf("replaced %v after the freeze", time.Since(frozeAt).Round(time.Millisecond))
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(produceV8("zombie", part.Partition)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(victim.PID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	// The zombie's first answer after waking, before it has heard from anyone:
	// it must not accept a write as the partition's leader.
	code, err := readProduceV8(conn)
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 {
		t.Fatalf("the fenced former leader accepted a produce for partition %d", part.Partition)
	}
	t.Logf("produce to the woken zombie: error code %d", code)
	// Its heartbeats (current epoch) bring it back once its metadata caught up.
	waitFor(t, 15*time.Second, "the woken broker unfenced", func() (bool, string) {
		e, fenced := brokerEpoch(d.status(t, watcher), victim.ID)
		return e == oldEpoch && !fenced, fmt.Sprintf("epoch %d (was %d), fenced %v", e, oldEpoch, fenced)
	})

	// A restart registers a new broker epoch; anything still speaking with
	// the old one (a zombie process of the same node) is refused.
	d.kill9(victim.ID)
	d.restart(victim.ID)
	var newEpoch int64
	waitFor(t, 20*time.Second, "the restarted broker registered anew", func() (bool, string) {
		e, fenced := brokerEpoch(d.status(t, watcher), victim.ID)
		newEpoch = e
		return e > oldEpoch && !fenced, fmt.Sprintf("epoch %d (was %d), fenced %v", e, oldEpoch, fenced)
	})
	secret, err := link.LoadSecret(d.cf.SecretFile)
	if err != nil {
		t.Fatal(err)
	}
	internal := map[int32]string{}
	for _, n := range d.cf.Nodes {
		internal[n.ID] = n.Internal
	}
	// The zombie presents the node's own id: it holds the cluster secret.
	dialer := &link.Dialer{Secret: secret, SelfID: victim.ID}
	cl := controller.NewClient(func(ctx context.Context, id int32) (net.Conn, error) {
		conn, _, err := dialer.Dial(ctx, internal[id], link.PurposeControl)
		return conn, err
	}, func() int32 { return watcher }, controller.ClientConfig{})
	defer cl.Close()
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	defer hcancel()
	_, err = cl.Heartbeat(hctx, controller.Heartbeat{NodeID: victim.ID, BrokerEpoch: oldEpoch})
	var ce *controller.Error
	if !errors.As(err, &ce) || ce.Code != wire.CodeStaleBrokerEpoch {
		t.Fatalf("heartbeat with the old broker epoch %d (current %d): %v, want STALE_BROKER_EPOCH", oldEpoch, newEpoch, err)
	}
}
