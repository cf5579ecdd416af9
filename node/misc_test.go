package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetForLeaderEpochAndInitProducerID(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("ep", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.client(false).ProduceSync(ctx, makeRecords("ep", 7, "ep")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	raw := e.dialRaw(true)

	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ep"
	for _, p := range []struct {
		partition, current, epoch int32
	}{{0, -1, 0}, {0, 0, 0}, {0, 3, 0}, {4, -1, 0}} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = p.partition, p.current, p.epoch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	resp.Version = 4
	decodeResponse(t, raw.request(req), resp)
	ps := resp.Topics[0].Partitions
	for i := range 2 {
		if ps[i].ErrorCode != 0 || ps[i].LeaderEpoch != 0 || ps[i].EndOffset != 7 {
			t.Errorf("partition entry %d: %+v, want epoch 0 end 7", i, ps[i])
		}
	}
	if ps[2].ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("future current epoch: code %d", ps[2].ErrorCode)
	}
	if ps[3].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: code %d", ps[3].ErrorCode)
	}

	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 1
	txn := "txn"
	init.TransactionalID = &txn
	iresp := kmsg.NewPtrInitProducerIDResponse()
	iresp.Version = 1
	decodeResponse(t, raw.request(init), iresp)
	if iresp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional InitProducerId: code %d", iresp.ErrorCode)
	}
	init.TransactionalID = nil
	decodeResponse(t, raw.request(init), iresp)
	first := iresp.ProducerID
	decodeResponse(t, raw.request(init), iresp)
	if iresp.ErrorCode != 0 || iresp.ProducerID == first || iresp.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId: %+v (first id %d)", iresp, first)
	}
}

// TestMinInsyncReplicas: on a single node min.insync.replicas=2 makes acks=all fail with
// NOT_ENOUGH_REPLICAS, while acks=1 still succeeds.
func TestMinInsyncReplicas(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("misr", 1, map[string]*string{"min.insync.replicas": ptr("2")})
	raw := e.dialRaw(false)
	for _, tc := range []struct {
		acks int16
		want int16
	}{{-1, kerr.NotEnoughReplicas.Code}, {1, 0}} {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, tc.acks, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "misr"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = seqBatch(-1, -1, -1, "x")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 9
		decodeResponse(t, raw.request(req), resp)
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.want {
			t.Errorf("acks=%d: code %d, want %d", tc.acks, got, tc.want)
		}
	}
}

// DescribeConfigs lists topic configs in topicConfigKeys order, which must be sorted by name.
func TestTopicConfigKeysSorted(t *testing.T) {
	if !slices.IsSorted(topicConfigKeys) {
		t.Fatalf("topicConfigKeys not sorted: %v", topicConfigKeys)
	}
}
