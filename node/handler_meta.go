package node

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/raftlog/meta"
	"github.com/sluice-io/sluice/wire"
)

// dispatch routes a parsed request to its handler and writes the answer. It returns false (and a
// reason) when the connection must be closed.
func (c *conn) dispatch(req wire.Request) (bool, string) {
	if c.replica >= 0 && req.Key != wire.KeyFetch && req.Key != wire.KeyApiVersions {
		// The internal link's replica connections carry replica fetches only.
		c.lg.Warn("request refused on a replica-fetch connection", "api", apiName(req.Key), "peer", c.replica)
		return false, "forbidden"
	}
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
		ctx, cancel := c.n.adminCtx()
		resp := c.handleInitProducerID(ctx, m)
		cancel()
		return c.respond(req, resp)
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

func (c *conn) handleMetadata(req wire.Request, m *kmsg.MetadataRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.MetadataResponse)
	// One view answers the whole request, so brokers, topics and offline replicas agree.
	reg := c.n.registry()
	view := reg.view.Load()
	img := view.img
	resp.Brokers = c.metadataBrokers(img)
	cid := img.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = -1
	if l := c.n.raft.LeaderID(); l != 0 {
		resp.ControllerID = int32(l)
	}

	all := m.Topics == nil || (req.Version == 0 && len(m.Topics) == 0)
	if all {
		ts := make([]*topic, 0, len(view.byName))
		for _, t := range view.byName {
			ts = append(ts, t)
		}
		slices.SortFunc(ts, func(a, b *topic) int { return strings.Compare(a.name, b.name) })
		for _, t := range ts {
			resp.Topics = append(resp.Topics, metadataTopic(t, img))
		}
		return resp
	}
	// Before v4 there is no AllowAutoTopicCreation field: Kafka auto-creates then.
	allowAuto := c.n.cfg.AutoCreateTopics && (req.Version < 4 || m.AllowAutoTopicCreation)
	for _, rt := range m.Topics {
		if rt.Topic == nil {
			t := view.byID[rt.TopicID]
			if t == nil {
				e := kmsg.NewMetadataResponseTopic()
				e.ErrorCode, e.TopicID = wire.CodeUnknownTopicID, rt.TopicID
				c.countErr(req.Key, e.ErrorCode)
				resp.Topics = append(resp.Topics, e)
				continue
			}
			resp.Topics = append(resp.Topics, metadataTopic(t, img))
			continue
		}
		name := *rt.Topic
		t, timg := view.byName[name], img
		var err error
		if t == nil {
			err = validateTopicName(name)
			if err == nil {
				err = ErrUnknownTopic
				if allowAuto {
					t, err = c.n.autoCreate(name)
					timg = reg.image() // the topic comes from a newer view
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
		resp.Topics = append(resp.Topics, metadataTopic(t, timg))
	}
	return resp
}

// metadataBrokers lists the registered, unfenced brokers with the address of the listener kind the
// request came in on (TLS or plaintext; the other kind when a broker lacks it).
func (c *conn) metadataBrokers(img *meta.Image) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, br := range img.Brokers() {
		if br.Fenced {
			continue
		}
		addr := br.Addresses.ClientPlain
		if c.ln.tls || addr == "" {
			addr = cmp.Or(br.Addresses.Client, br.Addresses.ClientPlain)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = br.NodeID, host, int32(p)
		if br.Rack != "" {
			rack := br.Rack
			b.Rack = &rack
		}
		out = append(out, b)
	}
	return out
}

// metadataTopic describes t; img (the image of t's view or a newer one) says which replicas are
// offline.
func metadataTopic(t *topic, img *meta.Image) kmsg.MetadataResponseTopic {
	e := kmsg.NewMetadataResponseTopic()
	name := t.name
	e.Topic, e.TopicID = &name, t.id
	e.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.state))
	for i, st := range t.state {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = int32(i)
		p.Leader, p.LeaderEpoch = st.Leader, st.LeaderEpoch
		p.Replicas, p.ISR = st.Replicas, st.ISR
		p.OfflineReplicas = []int32{}
		for _, r := range st.Replicas {
			if b, ok := img.Broker(r); !ok || b.Fenced {
				p.OfflineReplicas = append(p.OfflineReplicas, r)
			}
		}
		if st.Leader == meta.NoLeader {
			p.ErrorCode = wire.CodeLeaderNotAvailable
		}
		e.Partitions = append(e.Partitions, p)
	}
	return e
}
