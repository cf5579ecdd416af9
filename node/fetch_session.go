package node

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/wire"
)

// Incremental fetch sessions (KIP-227) on the internal link. A follower's fetcher keeps one
// connection per leader and asks for a session with its first full request (SessionID 0, epoch 0);
// later requests (the session id, epoch+1) list only the partitions whose fetch position changed
// and the ones to forget, and the answer holds only partitions with records, an error, a diverging
// epoch or a new high watermark or log start. An idle follower then costs a few bytes per long-poll
// instead of every partition it follows. The session lives on the connection (one fetcher, one
// connection), so it needs no broker-wide cache, id allocation or eviction: it ends with the
// connection. Client connections stay sessionless (every answer full, SessionId 0).

// fetchSession is the partitions of a replica-fetch connection's session.
type fetchSession struct {
	id    int32
	epoch int32 // the epoch of the last request served
	parts map[sessionKey]*sessionPart
	order []sessionKey // first-seen order, for stable responses
}

type sessionKey struct {
	topic     topicID
	partition int32
}

// sessionPart is what the follower last said about a partition and what it last heard.
type sessionPart struct {
	req            kmsg.FetchRequestTopicPartition
	sentHW, sentLS int64 // -1 until sent
}

// sessionRequest turns a session fetch into the full request it stands for: the session is created
// (epoch 0) or updated (epoch = last + 1) from m, and the returned request lists every partition of
// the session. code is a top-level error (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH)
// that ends the session.
func (c *conn) sessionRequest(m *kmsg.FetchRequest) (full *kmsg.FetchRequest, code int16) {
	s := c.session
	switch {
	case m.SessionEpoch == 0:
		c.nextSessionID++
		s = &fetchSession{id: c.nextSessionID, parts: map[sessionKey]*sessionPart{}}
		c.session = s
	case s == nil || m.SessionID != s.id:
		c.session = nil
		return nil, wire.CodeFetchSessionIDNotFound
	case m.SessionEpoch != s.epoch+1:
		c.session = nil
		return nil, wire.CodeInvalidFetchSessionEpoch
	}
	s.epoch = m.SessionEpoch
	for _, ft := range m.ForgottenTopics {
		for _, p := range ft.Partitions {
			delete(s.parts, sessionKey{ft.TopicID, p})
		}
	}
	for _, rt := range m.Topics {
		for _, rp := range rt.Partitions {
			k := sessionKey{rt.TopicID, rp.Partition}
			sp := s.parts[k]
			if sp == nil {
				sp = &sessionPart{sentHW: -1, sentLS: -1}
				s.parts[k] = sp
				s.order = append(s.order, k)
			}
			sp.req = rp
		}
	}
	full = kmsg.NewPtrFetchRequest()
	*full = *m
	full.Topics, full.ForgottenTopics = nil, nil
	byTopic := map[topicID]int{}
	live := s.order[:0]
	for _, k := range s.order {
		sp, ok := s.parts[k]
		if !ok {
			continue
		}
		live = append(live, k)
		i, ok := byTopic[k.topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = k.topic
			full.Topics = append(full.Topics, t)
			i = len(full.Topics) - 1
			byTopic[k.topic] = i
		}
		full.Topics[i].Partitions = append(full.Topics[i].Partitions, sp.req)
	}
	s.order = live
	return full, wire.CodeNone
}

// trimSessionResponse drops, from an incremental session answer, the partitions the follower need
// not hear about (no records, no error, no divergence, same high watermark and log start as last
// sent), and records what it is told. A session's first (full) answer keeps every partition.
func (c *conn) trimSessionResponse(resp *wire.FetchResponse, incremental bool) {
	s := c.session
	resp.SessionID = s.id
	topics := resp.Topics[:0]
	for _, t := range resp.Topics {
		parts := t.Partitions[:0]
		for _, p := range t.Partitions {
			sp := s.parts[sessionKey{t.TopicID, p.Partition}]
			keep := !incremental || sp == nil || len(p.Records) > 0 || p.ErrorCode != wire.CodeNone ||
				p.DivergingEpoch != nil || p.HighWatermark != sp.sentHW || p.LogStartOffset != sp.sentLS
			if !keep {
				continue
			}
			if sp != nil {
				sp.sentHW, sp.sentLS = p.HighWatermark, p.LogStartOffset
			}
			parts = append(parts, p)
		}
		if len(parts) > 0 {
			t.Partitions = parts
			topics = append(topics, t)
		}
	}
	resp.Topics = topics
}
