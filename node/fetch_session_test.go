package node

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/wire"
)

func sessionFetch(id, epoch int32, topic topicID, parts map[int32]int64, forget ...int32) *kmsg.FetchRequest {
	m := kmsg.NewPtrFetchRequest()
	m.SessionID, m.SessionEpoch = id, epoch
	if len(parts) > 0 {
		t := kmsg.NewFetchRequestTopic()
		t.TopicID = topic
		for p, off := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset = p, off
			t.Partitions = append(t.Partitions, rp)
		}
		m.Topics = append(m.Topics, t)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.TopicID, ft.Partitions = topic, forget
		m.ForgottenTopics = append(m.ForgottenTopics, ft)
	}
	return m
}

// offsets lists a full request's partitions and fetch offsets.
func offsets(m *kmsg.FetchRequest) map[int32]int64 {
	out := map[int32]int64{}
	for _, t := range m.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.FetchOffset
		}
	}
	return out
}

func TestFetchSessionRequests(t *testing.T) {
	c := &conn{replica: 2}
	topic := topicID{1}
	full, code := c.sessionRequest(sessionFetch(0, 0, topic, map[int32]int64{0: 10, 1: 20}))
	if code != wire.CodeNone || len(offsets(full)) != 2 || c.session == nil || c.session.id == 0 {
		t.Fatalf("new session: code %d, %v", code, offsets(full))
	}
	id := c.session.id
	// Incremental: partition 0 moved on, partition 1 is forgotten, partition 2 joins.
	full, code = c.sessionRequest(sessionFetch(id, 1, topic, map[int32]int64{0: 15, 2: 0}, 1))
	got := offsets(full)
	if code != wire.CodeNone || len(got) != 2 || got[0] != 15 || got[2] != 0 {
		t.Fatalf("incremental: code %d, %v", code, got)
	}
	// Nothing changed: the session still stands for both partitions.
	full, code = c.sessionRequest(sessionFetch(id, 2, topic, nil))
	if got := offsets(full); code != wire.CodeNone || len(got) != 2 || got[0] != 15 {
		t.Fatalf("idle: code %d, %v", code, got)
	}
	if _, code = c.sessionRequest(sessionFetch(id, 4, topic, nil)); code != wire.CodeInvalidFetchSessionEpoch || c.session != nil {
		t.Fatalf("skipped epoch: code %d, session %v", code, c.session)
	}
	if _, code = c.sessionRequest(sessionFetch(id, 1, topic, nil)); code != wire.CodeFetchSessionIDNotFound {
		t.Fatalf("ended session: code %d", code)
	}
}

func TestFetchSessionTrim(t *testing.T) {
	c := &conn{replica: 2}
	topic := topicID{1}
	if _, code := c.sessionRequest(sessionFetch(0, 0, topic, map[int32]int64{0: 10, 1: 20, 2: 5})); code != wire.CodeNone {
		t.Fatal(code)
	}
	resp := func() *wire.FetchResponse {
		r := &wire.FetchResponse{Topics: []wire.FetchTopic{{TopicID: topic}}}
		for p := int32(0); p < 3; p++ {
			fp := wire.NewFetchPartition(p)
			fp.HighWatermark, fp.LogStartOffset = 10, 0
			r.Topics[0].Partitions = append(r.Topics[0].Partitions, fp)
		}
		return r
	}
	first := resp()
	c.trimSessionResponse(first, false)
	if len(first.Topics) != 1 || len(first.Topics[0].Partitions) != 3 || first.SessionID != c.session.id {
		t.Fatalf("a session's first answer is full: %+v", first)
	}
	next := resp()
	next.Topics[0].Partitions[1].HighWatermark = 11                       // news
	next.Topics[0].Partitions[2].ErrorCode = wire.CodeNotLeaderOrFollower // news
	c.trimSessionResponse(next, true)
	if len(next.Topics) != 1 || len(next.Topics[0].Partitions) != 2 ||
		next.Topics[0].Partitions[0].Partition != 1 || next.Topics[0].Partitions[1].Partition != 2 {
		t.Fatalf("incremental answer: %+v", next.Topics)
	}
	idle := resp()
	idle.Topics[0].Partitions[1].HighWatermark = 11
	idle.Topics[0].Partitions[2].ErrorCode = wire.CodeNotLeaderOrFollower
	c.trimSessionResponse(idle, true)
	if len(idle.Topics) != 1 || len(idle.Topics[0].Partitions) != 1 || idle.Topics[0].Partitions[0].Partition != 2 {
		t.Fatalf("only the partition still in error is sent again: %+v", idle.Topics)
	}
}
