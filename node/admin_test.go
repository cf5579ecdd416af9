package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batchtest"
)

func ptr[T any](v T) *T { return &v }

func TestAdminTopics(t *testing.T) {
	e := startNode(t, "", nil)
	adm := e.admin(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{
		"retention.ms": ptr("3600000"), "sluice.durability": ptr("always"), "segment.bytes": ptr("1048576"),
	}, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if r := resp["orders"]; r.Err != nil || r.ID == (kadm.TopicID{}) || r.NumPartitions != 3 {
		t.Fatalf("create orders: %+v", r)
	}

	bad := []struct {
		name    string
		parts   int32
		rf      int16
		configs map[string]*string
		want    error
	}{
		{"orders", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name!", 1, 1, nil, kerr.InvalidTopicException},
		{"..", 1, 1, nil, kerr.InvalidTopicException},
		{strings.Repeat("x", 250), 1, 1, nil, kerr.InvalidTopicException},
		{"rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"zero", 0, 1, nil, kerr.InvalidPartitions},
		{"cfg", 1, 1, map[string]*string{"sluice.durability": ptr("sometimes")}, kerr.InvalidConfig},
		{"cfg2", 1, 1, map[string]*string{"no.such.config": ptr("1")}, kerr.InvalidConfig},
		{"cfg3", 1, 1, map[string]*string{"message.timestamp.type": ptr("LogAppendTime")}, kerr.InvalidConfig},
	}
	for _, b := range bad {
		resp, err := adm.CreateTopics(ctx, b.parts, b.rf, b.configs, b.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp[b.name].Err; !errors.Is(got, b.want) {
			t.Errorf("create %q (p=%d rf=%d %v): %v, want %v", b.name, b.parts, b.rf, b.configs, got, b.want)
		}
	}

	// validateOnly creates nothing.
	vresp, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "validated")
	if err != nil || vresp["validated"].Err != nil {
		t.Fatalf("validate: %v %v", err, vresp["validated"].Err)
	}
	if e.n.registry().get("validated") != nil {
		t.Fatal("validateOnly created the topic")
	}

	// Metadata lists the topic with ids, leader = this node.
	md, err := adm.Metadata(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	td := md.Topics["orders"]
	if td.Err != nil || len(td.Partitions) != 3 || td.ID != resp["orders"].ID {
		t.Fatalf("metadata: %+v", td)
	}
	for _, p := range td.Partitions {
		if p.Leader != e.cfg.NodeID || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Fatalf("partition metadata %+v", p)
		}
	}
	if md.Cluster != e.n.ClusterID() || md.Controller != e.cfg.NodeID {
		t.Fatalf("cluster %q controller %d", md.Cluster, md.Controller)
	}

	// DescribeConfigs shows explicit and default values.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("orders", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	vals := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		vals[c.Key] = c
	}
	if v := vals["sluice.durability"]; v.Value == nil || *v.Value != "always" || v.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("sluice.durability = %+v", v)
	}
	if v := vals["max.message.bytes"]; v.Value == nil || *v.Value != "1048588" || v.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("max.message.bytes = %+v", v)
	}
	brc, err := adm.DescribeBrokerConfigs(ctx, e.cfg.NodeID)
	if err != nil || len(brc) != 1 || brc[0].Err != nil || len(brc[0].Configs) == 0 {
		t.Fatalf("broker configs: %v %+v", err, brc)
	}

	// CreatePartitions grows, never shrinks.
	cp, err := adm.UpdatePartitions(ctx, 5, "orders")
	if err != nil || cp["orders"].Err != nil {
		t.Fatalf("update partitions: %v %v", err, cp["orders"].Err)
	}
	cp, err = adm.UpdatePartitions(ctx, 2, "orders")
	if err != nil || !errors.Is(cp["orders"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v %v", err, cp["orders"].Err)
	}
	cp, err = adm.UpdatePartitions(ctx, 2, "missing")
	if err != nil || !errors.Is(cp["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing: %v %v", err, cp["missing"].Err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "orders-4")); err != nil {
		t.Fatalf("partition dir: %v", err)
	}
	// The new partitions take writes.
	cl := e.client(false, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 4, Value: []byte("p4")}).FirstErr(); err != nil {
		t.Fatalf("produce to new partition: %v", err)
	}

	// DeleteTopics by name, then by id (v6).
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "byid"); err != nil {
		t.Fatal(err)
	}
	dr, err := adm.DeleteTopics(ctx, "orders")
	if err != nil || dr["orders"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["orders"].Err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "orders-0")); !os.IsNotExist(err) {
		t.Fatalf("orders-0 still exists: %v", err)
	}
	dr, err = adm.DeleteTopics(ctx, "orders")
	if err != nil || !errors.Is(dr["orders"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v %v", err, dr["orders"].Err)
	}
	id := e.n.registry().get("byid").id
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = id
	req.Topics = append(req.Topics, rt)
	raw := e.dialRaw(false)
	dresp := kmsg.NewPtrDeleteTopicsResponse()
	dresp.Version = 6
	decodeResponse(t, raw.request(req), dresp)
	if len(dresp.Topics) != 1 || dresp.Topics[0].ErrorCode != 0 || dresp.Topics[0].Topic == nil || *dresp.Topics[0].Topic != "byid" {
		t.Fatalf("delete by id: %+v", dresp.Topics)
	}
	decodeResponse(t, raw.request(req), dresp)
	if dresp.Topics[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("delete unknown id: code %d", dresp.Topics[0].ErrorCode)
	}

	// Recreating a deleted topic starts empty.
	e.createTopic("orders", 1, nil)
	lo, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("orders", 0); o.Offset != 0 {
		t.Fatalf("recreated topic end offset %d", o.Offset)
	}
}

func TestListOffsets(t *testing.T) {
	e := startNode(t, "", nil)
	e.createTopic("lo", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.UnixMilli(1_700_000_000_000)
	// Ten batches of 3 records, batch i stamped base+i*1000 ms (+0,1,2), written raw so the batch
	// boundaries are exact.
	raw := e.dialRaw(false)
	for i := range 10 {
		b := batchtest.Build(batchtest.Timestamp(base.Add(time.Duration(i)*time.Second).UnixMilli()),
			batchtest.RecordAt(0, nil, []byte("v")), batchtest.RecordAt(1, nil, []byte("v")), batchtest.RecordAt(2, nil, []byte("v")))
		if p := raw.produceRaw(9, "lo", 0, b); p.ErrorCode != 0 || p.BaseOffset != int64(3*i) {
			t.Fatalf("produce batch %d: %+v", i, p)
		}
	}
	cl := e.client(false)
	adm := kadm.NewClient(cl)
	start, err := adm.ListStartOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("lo", 0); o.Err != nil || o.Offset != 0 {
		t.Fatalf("earliest: %+v", o)
	}
	end, err := adm.ListEndOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("lo", 0); o.Err != nil || o.Offset != 30 {
		t.Fatalf("latest: %+v", o)
	}
	// By time: the first record (in offset order) with timestamp >= target, and its timestamp.
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	for _, tc := range []struct {
		ts     time.Time
		want   int64
		wantTs int64
	}{
		{base.Add(-time.Hour), 0, ms(0)},
		{base, 0, ms(0)},
		{base.Add(5 * time.Second), 15, ms(5 * time.Second)},
		{base.Add(5*time.Second + time.Millisecond), 16, ms(5*time.Second + time.Millisecond)},
		{base.Add(5*time.Second + 2*time.Millisecond), 17, ms(5*time.Second + 2*time.Millisecond)},
		{base.Add(5*time.Second + 3*time.Millisecond), 18, ms(6 * time.Second)},
		{base.Add(time.Hour), 30, -1}, // the broker answers -1, -1; kadm maps "none" to the end offset
	} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, tc.ts.UnixMilli(), "lo")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("lo", 0)
		if o.Err != nil || o.Offset != tc.want || o.Timestamp != tc.wantTs {
			t.Errorf("offset for %v: %+v, want %d at %d", tc.ts.Sub(base), o, tc.want, tc.wantTs)
		}
	}
	// -3: max timestamp (raw request, ListOffsets v7): the base offset of the batch holding it
	// (batch granularity, unlike the by-time lookup).
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -3
	rt.Partitions = append(rt.Partitions, rp)
	rp2 := kmsg.NewListOffsetsRequestTopicPartition()
	rp2.Partition = 9
	rp2.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp2)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrListOffsetsResponse()
	resp.Version = 7
	decodeResponse(t, e.dialRaw(false).request(req), resp)
	p := resp.Topics[0].Partitions
	if p[0].ErrorCode != 0 || p[0].Offset != 27 || p[0].Timestamp != base.Add(9*time.Second+2*time.Millisecond).UnixMilli() {
		t.Errorf("max timestamp: %+v", p[0])
	}
	if p[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: %+v", p[1])
	}
}
