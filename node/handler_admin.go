package node

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/wire"
)

// Config sources and types as Kafka numbers them (DescribeConfigs, CreateTopics v5+).
const (
	sourceDynamicTopic  = 1
	sourceStaticBroker  = 4
	sourceDefault       = 5
	configTypeBoolean   = 1
	configTypeString    = 2
	configTypeInt       = 3
	configTypeLong      = 5
	configTypeList      = 7
	resourceTypeTopic   = 2
	resourceTypeBroker  = 4
	maxAdminErrorLength = 512
)

func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	if len(s) > maxAdminErrorLength {
		s = s[:maxAdminErrorLength]
	}
	return &s
}

// createSpecFor checks a CreateTopics entry's shape (assignment vs counts, null config values) and
// returns the spec.
func createSpecFor(rt kmsg.CreateTopicsRequestTopic) (createSpec, error) {
	s := createSpec{name: rt.Topic, partitions: rt.NumPartitions, rf: rt.ReplicationFactor, configs: map[string]string{}}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return s, fmt.Errorf("%w: replica assignment requires NumPartitions and ReplicationFactor -1", ErrInvalidAssignment)
		}
		s.assignment = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(s.assignment) || s.assignment[a.Partition] != nil {
				return s, fmt.Errorf("%w: partitions must be numbered 0..%d, each once", ErrInvalidAssignment, len(s.assignment)-1)
			}
			s.assignment[a.Partition] = a.Replicas
		}
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return s, fmt.Errorf("%w: %s has a null value", ErrInvalidTopicConfig, c.Name)
		}
		s.configs[c.Name] = *c.Value
	}
	return s, nil
}

func (c *conn) handleCreateTopics(m *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := c.n.adminCtx()
	defer cancel()
	count := map[string]int{}
	for _, rt := range m.Topics {
		count[rt.Topic]++
	}
	for _, rt := range m.Topics {
		tr := kmsg.NewCreateTopicsResponseTopic()
		tr.Topic = rt.Topic
		tr.NumPartitions, tr.ReplicationFactor = -1, -1
		var err error
		var code int16
		if count[rt.Topic] > 1 {
			code, err = wire.CodeInvalidRequest, fmt.Errorf("topic %q named more than once", rt.Topic)
		} else {
			var s createSpec
			if s, err = createSpecFor(rt); err == nil {
				cfg, parts, rf, t, cerr := c.n.createTopic(ctx, s, m.ValidateOnly)
				if err = cerr; err == nil {
					cfg.rf = int(rf)
					tr.NumPartitions, tr.ReplicationFactor = parts, rf
					tr.Configs = createConfigs(cfg)
					if t != nil {
						tr.TopicID = t.id
					}
				}
			}
			code = codeFor(err)
		}
		if code != wire.CodeNone {
			tr.ErrorCode, tr.ErrorMessage = code, errMessage(err)
			c.countErr(wire.KeyCreateTopics, code)
			if code == wire.CodeUnknownServerError {
				c.lg.Error("create topic", "topic", rt.Topic, "err", err)
			}
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

func createConfigs(cfg topicConfig) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, e := range cfg.describe() {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		v := e.Value
		rc.Name, rc.Value = e.Name, &v
		rc.Source = sourceDefault
		if e.Explicit {
			rc.Source = sourceDynamicTopic
		}
		out = append(out, rc)
	}
	return out
}

func (c *conn) handleDeleteTopics(m *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.DeleteTopicsResponse)
	reg := c.n.registry()
	ctx, cancel := c.n.adminCtx()
	defer cancel()
	reqs := m.Topics
	if m.Version < 6 {
		for _, name := range m.TopicNames {
			reqs = append(reqs, kmsg.DeleteTopicsRequestTopic{Topic: &name})
		}
	}
	for _, rt := range reqs {
		tr := kmsg.NewDeleteTopicsResponseTopic()
		tr.Topic, tr.TopicID = rt.Topic, rt.TopicID
		var t *topic
		var err error
		switch {
		case rt.Topic != nil:
			if t = reg.get(*rt.Topic); t == nil {
				err = fmt.Errorf("%w: %q", ErrUnknownTopic, *rt.Topic)
			} else if rt.TopicID != (topicID{}) && rt.TopicID != t.id {
				err = fmt.Errorf("%w: %q has another id", ErrUnknownTopicID, *rt.Topic)
			}
		default:
			if t = reg.getByID(rt.TopicID); t == nil {
				err = fmt.Errorf("%w: %x", ErrUnknownTopicID, rt.TopicID)
			}
		}
		if err == nil {
			name := t.name
			tr.Topic, tr.TopicID = &name, t.id
			err = c.n.deleteTopic(ctx, t)
		}
		if code := codeFor(err); code != wire.CodeNone {
			tr.ErrorCode, tr.ErrorMessage = code, errMessage(err)
			c.countErr(wire.KeyDeleteTopics, code)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

func (c *conn) handleCreatePartitions(m *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.CreatePartitionsResponse)
	reg := c.n.registry()
	ctx, cancel := c.n.adminCtx()
	defer cancel()
	for _, rt := range m.Topics {
		tr := kmsg.NewCreatePartitionsResponseTopic()
		tr.Topic = rt.Topic
		var err error
		if t := reg.get(rt.Topic); t == nil {
			err = fmt.Errorf("%w: %q", ErrUnknownTopic, rt.Topic)
		} else {
			var assign [][]int32
			if rt.Assignment != nil {
				assign = make([][]int32, 0, len(rt.Assignment))
				for _, a := range rt.Assignment {
					assign = append(assign, a.Replicas)
				}
			}
			err = c.n.addPartitions(ctx, t, rt.Count, assign, m.ValidateOnly)
		}
		if code := codeFor(err); code != wire.CodeNone {
			tr.ErrorCode, tr.ErrorMessage = code, errMessage(err)
			c.countErr(wire.KeyCreatePartitions, code)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

var topicConfigTypes = map[string]int8{
	cfgRetentionMs: configTypeLong, cfgRetentionBytes: configTypeLong, cfgSegmentBytes: configTypeInt,
	cfgSegmentMs: configTypeLong, cfgMaxMessageBytes: configTypeInt, cfgMinInsyncReplicas: configTypeInt,
	cfgDurability: configTypeString, cfgTimestampType: configTypeString, cfgCleanupPolicy: configTypeList,
	cfgUncleanElection: configTypeBoolean,
}

func (c *conn) handleDescribeConfigs(m *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := m.ResponseKind().(*kmsg.DescribeConfigsResponse)
	reg := c.n.registry()
	for _, rr := range m.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		var err error
		switch rr.ResourceType {
		case resourceTypeTopic:
			t := reg.get(rr.ResourceName)
			if t == nil {
				err = fmt.Errorf("%w: %q", ErrUnknownTopic, rr.ResourceName)
				break
			}
			for _, e := range t.cfg.describe() {
				if !want(e.Name) {
					continue
				}
				src := int8(sourceDefault)
				if e.Explicit {
					src = sourceDynamicTopic
				}
				res.Configs = append(res.Configs, describeEntry(e.Name, e.Value, src, topicConfigTypes[e.Name], false))
			}
		case resourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(c.n.cfg.NodeID)) {
				err = fmt.Errorf("%w: broker %q is not this node", errInvalidRequest, rr.ResourceName)
				break
			}
			for _, kv := range c.n.brokerConfigs() {
				if want(kv[0]) {
					res.Configs = append(res.Configs, describeEntry(kv[0], kv[1], sourceStaticBroker, configTypeString, true))
				}
			}
		default:
			err = fmt.Errorf("%w: resource type %d", errInvalidRequest, rr.ResourceType)
		}
		if code := codeFor(err); code != wire.CodeNone {
			res.ErrorCode, res.ErrorMessage = code, errMessage(err)
			c.countErr(wire.KeyDescribeConfigs, code)
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}

func describeEntry(name, value string, source, typ int8, readOnly bool) kmsg.DescribeConfigsResponseResourceConfig {
	e := kmsg.NewDescribeConfigsResponseResourceConfig()
	v := value
	e.Name, e.Value, e.ReadOnly = name, &v, readOnly
	e.Source = kmsg.ConfigSource(source)
	e.IsDefault = source == sourceDefault
	e.ConfigType = kmsg.ConfigType(typ)
	return e
}

// brokerConfigs is the minimal broker resource: the settings a client or operator may want to see.
func (n *Node) brokerConfigs() [][2]string {
	def := defaultTopicConfig(n.cfg.Log) // n.cfg was validated by New
	def.rf = int(n.cfg.defaultRF())
	return [][2]string{
		{"auto.create.topics.enable", strconv.FormatBool(n.cfg.AutoCreateTopics)},
		{"broker.id", strconv.Itoa(int(n.cfg.NodeID))},
		{"default.replication.factor", strconv.Itoa(int(n.cfg.defaultRF()))},
		{"log.retention.bytes", def.value(cfgRetentionBytes)},
		{"log.retention.ms", def.value(cfgRetentionMs)},
		{"log.segment.bytes", def.value(cfgSegmentBytes)},
		{"message.max.bytes", def.value(cfgMaxMessageBytes)},
		{"min.insync.replicas", def.value(cfgMinInsyncReplicas)},
		{"node.id", strconv.Itoa(int(n.cfg.NodeID))},
		{"num.partitions", strconv.Itoa(int(n.cfg.DefaultPartitions))},
		{"rack", n.cfg.Rack},
		{"sluice.durability", def.value(cfgDurability)},
	}
}
