package node

import (
	"errors"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/wire"
)

// dispatch routes a parsed request to its handler and writes the answer. It returns false (and a
// reason) when the connection must be closed.
func (c *conn) dispatch(req wire.Request) (bool, string) {
	switch m := req.Msg.(type) {
	case *kmsg.FetchRequest:
		return c.handleFetch(req, m)
	case *kmsg.ProduceRequest:
		resp, closeConn := c.handleProduce(req, m)
		if m.Acks == 0 {
			// acks=0: no response at all. Kafka closes the connection when such a request failed,
			// the only way to tell the client.
			if closeConn {
				return false, "acks0_error"
			}
			return true, ""
		}
		return c.respond(req, resp)
	case *kmsg.ApiVersionsRequest:
		return c.respond(req, c.n.versions.APIVersionsResponse())
	case *kmsg.MetadataRequest:
		return c.respond(req, c.handleMetadata(req, m))
	case *kmsg.ListOffsetsRequest:
		return c.respond(req, c.handleListOffsets(m))
	case *kmsg.OffsetForLeaderEpochRequest:
		return c.respond(req, c.handleOffsetForLeaderEpoch(m))
	case *kmsg.InitProducerIDRequest:
		return c.respond(req, c.handleInitProducerID(m))
	case *kmsg.CreateTopicsRequest:
		return c.respond(req, c.handleCreateTopics(m))
	case *kmsg.DeleteTopicsRequest:
		return c.respond(req, c.handleDeleteTopics(m))
	case *kmsg.CreatePartitionsRequest:
		return c.respond(req, c.handleCreatePartitions(m))
	case *kmsg.DescribeConfigsRequest:
		return c.respond(req, c.handleDescribeConfigs(m))
	}
	// Enabled in wire.Versions but not handled here: a programming error, not client input.
	c.lg.Error("no handler for enabled api", "api", apiName(req.Key))
	return false, "unknown_api"
}

// autoCreate creates topic name with the default partition count, tolerating a concurrent creation.
func (n *Node) autoCreate(name string) (*topic, error) {
	t, err := n.registry().create(createSpec{name: name, partitions: n.cfg.DefaultPartitions})
	if errors.Is(err, ErrTopicExists) {
		if t := n.registry().get(name); t != nil {
			return t, nil
		}
	}
	return t, err
}

func (c *conn) handleMetadata(req wire.Request, m *kmsg.MetadataRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.MetadataResponse)
	nodeID := c.n.cfg.NodeID
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = nodeID, c.ln.advHost, c.ln.advPort
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	cid := c.n.ident.ClusterID
	resp.ClusterID = &cid
	resp.ControllerID = nodeID

	reg := c.n.registry()
	all := m.Topics == nil || (req.Version == 0 && len(m.Topics) == 0)
	if all {
		ts := reg.all()
		slices.SortFunc(ts, func(a, b *topic) int { return strings.Compare(a.name, b.name) })
		for _, t := range ts {
			resp.Topics = append(resp.Topics, c.metadataTopic(t))
		}
		return resp
	}
	// Before v4 there is no AllowAutoTopicCreation field: Kafka auto-creates then.
	allowAuto := c.n.cfg.AutoCreateTopics && (req.Version < 4 || m.AllowAutoTopicCreation)
	for _, rt := range m.Topics {
		if rt.Topic == nil {
			t := reg.getByID(rt.TopicID)
			if t == nil {
				e := kmsg.NewMetadataResponseTopic()
				e.ErrorCode, e.TopicID = wire.CodeUnknownTopicID, rt.TopicID
				c.countErr(req.Key, e.ErrorCode)
				resp.Topics = append(resp.Topics, e)
				continue
			}
			resp.Topics = append(resp.Topics, c.metadataTopic(t))
			continue
		}
		name := *rt.Topic
		t := reg.get(name)
		var err error
		if t == nil {
			err = validateTopicName(name)
			if err == nil {
				err = ErrUnknownTopic
				if allowAuto {
					t, err = c.n.autoCreate(name)
				}
			}
		}
		if err != nil {
			e := kmsg.NewMetadataResponseTopic()
			e.Topic = &name
			e.ErrorCode = codeFor(err)
			c.countErr(req.Key, e.ErrorCode)
			resp.Topics = append(resp.Topics, e)
			continue
		}
		resp.Topics = append(resp.Topics, c.metadataTopic(t))
	}
	return resp
}

func (c *conn) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	nodeID := c.n.cfg.NodeID
	e := kmsg.NewMetadataResponseTopic()
	name := t.name
	e.Topic, e.TopicID = &name, t.id
	e.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.parts))
	replicas := []int32{nodeID}
	for i := range t.parts {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = int32(i)
		p.Leader, p.LeaderEpoch = nodeID, leaderEpoch
		p.Replicas, p.ISR, p.OfflineReplicas = replicas, replicas, []int32{}
		e.Partitions = append(e.Partitions, p)
	}
	return e
}
