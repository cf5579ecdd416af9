package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-io/sluice/raftlog/meta"
)

// adminTimeout bounds one metadata change (forwarding, commit and local apply).
const adminTimeout = 15 * time.Second

// adminCtx is the context of a metadata change made for a client request: bounded by adminTimeout
// and cancelled when the node shuts down.
func (n *Node) adminCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	go func() {
		select {
		case <-n.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// commit proposes cmd through the controller and waits until this node's replicas and topic views
// reflect it.
func (n *Node) commit(ctx context.Context, cmd meta.Command) error {
	index, err := n.ctrl.propose(ctx, cmd)
	if err != nil {
		return mapMetaErr(err)
	}
	if err := n.raft.WaitApplied(ctx, index); err != nil {
		return fmt.Errorf("%w: waiting for index %d: %w", ErrRequestTimedOut, index, err)
	}
	target := n.mm.Image().Index()
	if err := n.waitFor(ctx, func() bool { return n.registry().image().Index() >= target }); err != nil {
		return fmt.Errorf("%w: waiting for index %d: %w", ErrRequestTimedOut, index, err)
	}
	return nil
}

// mapMetaErr turns the state machine's rejections into node errors (and so Kafka codes).
func mapMetaErr(err error) error {
	switch {
	case errors.Is(err, meta.ErrTopicExists):
		return fmt.Errorf("%w: %w", ErrTopicExists, err)
	case errors.Is(err, meta.ErrUnknownTopic), errors.Is(err, meta.ErrUnknownPartition):
		return fmt.Errorf("%w: %w", ErrUnknownTopic, err)
	case errors.Is(err, meta.ErrInvalidTopicName):
		return fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	case errors.Is(err, meta.ErrInvalidAssignment):
		return fmt.Errorf("%w: %w", ErrInvalidAssignment, err)
	case errors.Is(err, meta.ErrInvalidConfig):
		return fmt.Errorf("%w: %w", ErrInvalidTopicConfig, err)
	case errors.Is(err, meta.ErrStaleBrokerEpoch), errors.Is(err, meta.ErrUnknownBroker):
		return fmt.Errorf("%w: %w", ErrBrokerNotAvailable, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", ErrRequestTimedOut, err)
	}
	return err
}

// createSpec is a CreateTopics entry.
type createSpec struct {
	name       string
	partitions int32 // -1: DefaultPartitions
	rf         int16 // -1: the default replication factor
	assignment [][]int32
	configs    map[string]string
}

// liveBrokers returns the image's unfenced brokers for placement.
func liveBrokers(img *meta.Image) []meta.BrokerInfo {
	var out []meta.BrokerInfo
	for _, b := range img.PlacementBrokers() {
		if !b.Fenced {
			out = append(out, b)
		}
	}
	return out
}

// planTopic validates a topic creation against the image and computes its assignment.
func (n *Node) planTopic(img *meta.Image, s createSpec) (topicConfig, [][]int32, error) {
	if err := validateTopicName(s.name); err != nil {
		return topicConfig{}, nil, err
	}
	cfg, err := parseTopicConfig(n.cfg.Log, s.configs)
	if err != nil {
		return topicConfig{}, nil, err
	}
	if _, ok := img.TopicByName(s.name); ok {
		return topicConfig{}, nil, fmt.Errorf("%w: %q", ErrTopicExists, s.name)
	}
	if len(s.assignment) > 0 {
		if err := checkAssignment(img, s.assignment, 0); err != nil {
			return topicConfig{}, nil, err
		}
		return cfg, s.assignment, nil
	}
	parts := s.partitions
	if parts == -1 {
		parts = n.cfg.DefaultPartitions
	}
	if parts < 1 {
		return topicConfig{}, nil, fmt.Errorf("%w: %d partitions", ErrInvalidPartitions, parts)
	}
	live := liveBrokers(img)
	rf := int(s.rf)
	switch {
	case rf == -1:
		rf = min(int(n.cfg.defaultRF()), len(live))
		if rf < 1 {
			return topicConfig{}, nil, fmt.Errorf("%w: no unfenced broker", ErrInvalidReplication)
		}
	case rf < 1 || rf > len(live):
		return topicConfig{}, nil, fmt.Errorf("%w: %d (%d unfenced brokers)", ErrInvalidReplication, rf, len(live))
	}
	assign, err := meta.Place(live, int(parts), rf, startFor(img, len(live)))
	if err != nil {
		return topicConfig{}, nil, fmt.Errorf("%w: %w", ErrInvalidReplication, err)
	}
	return cfg, assign, nil
}

// startFor rotates placement by the partitions that exist, so successive topics do not all lead on
// the same brokers.
func startFor(img *meta.Image, brokers int) int {
	if brokers == 0 {
		return 0
	}
	total := 0
	for _, t := range img.Topics() {
		total += len(t.Partitions)
	}
	return total % brokers
}

// checkAssignment validates explicit replica lists: non-empty, distinct, registered brokers, one
// replication factor for all.
func checkAssignment(img *meta.Image, assign [][]int32, existingRF int) error {
	rf := existingRF
	for i, reps := range assign {
		if len(reps) == 0 {
			return fmt.Errorf("%w: partition %d has no replicas", ErrInvalidAssignment, i)
		}
		if rf == 0 {
			rf = len(reps)
		}
		if len(reps) != rf {
			return fmt.Errorf("%w: partition %d has %d replicas, expected %d", ErrInvalidAssignment, i, len(reps), rf)
		}
		seen := map[int32]bool{}
		for _, r := range reps {
			if _, ok := img.Broker(r); !ok || seen[r] {
				return fmt.Errorf("%w: partition %d replicas %v: unknown or repeated broker %d", ErrInvalidAssignment, i, reps, r)
			}
			seen[r] = true
		}
	}
	return nil
}

// createTopic creates a topic through the controller and returns it once this node applied it.
// validateOnly checks without creating and returns the planned partition count and replication.
func (n *Node) createTopic(ctx context.Context, s createSpec, validateOnly bool) (topicConfig, int32, int16, *topic, error) {
	img := n.mm.Image()
	cfg, assign, err := n.planTopic(img, s)
	if err != nil {
		return cfg, 0, 0, nil, err
	}
	parts, rf := int32(len(assign)), int16(len(assign[0]))
	if validateOnly {
		return cfg, parts, rf, nil, nil
	}
	id, err := meta.NewTopicID(rand.Reader)
	if err != nil {
		return cfg, 0, 0, nil, err
	}
	if err := n.commit(ctx, meta.CreateTopic{Name: s.name, TopicID: id, Partitions: assign, Configs: cfg.set}); err != nil {
		return cfg, 0, 0, nil, err
	}
	t := n.registry().getByID(id)
	if t == nil {
		return cfg, 0, 0, nil, fmt.Errorf("%w: %q deleted right after creation", ErrUnknownTopic, s.name)
	}
	n.lg.Info("topic created", "topic", s.name, "topic_id", id.String(), "partitions", parts, "replication_factor", rf)
	return cfg, parts, rf, t, nil
}

// autoCreate creates topic name with the default partition count and replication factor,
// tolerating a concurrent creation.
func (n *Node) autoCreate(name string) (*topic, error) {
	ctx, cancel := n.adminCtx()
	defer cancel()
	_, _, _, t, err := n.createTopic(ctx, createSpec{name: name, partitions: -1, rf: -1}, false)
	if errors.Is(err, ErrTopicExists) {
		if err := n.waitFor(ctx, func() bool { return n.registry().get(name) != nil }); err == nil {
			return n.registry().get(name), nil
		}
	}
	return t, err
}

// deleteTopic deletes a topic through the controller.
func (n *Node) deleteTopic(ctx context.Context, t *topic) error {
	if err := n.commit(ctx, meta.DeleteTopic{TopicID: t.id}); err != nil {
		return err
	}
	n.lg.Info("topic deleted", "topic", t.name, "topic_id", t.id.String())
	return nil
}

// addPartitions grows a topic to count partitions (placed like a new topic's, unless assign is
// given).
func (n *Node) addPartitions(ctx context.Context, t *topic, count int32, assign [][]int32, validateOnly bool) error {
	have := t.numPartitions()
	if count <= have {
		return fmt.Errorf("%w: topic %q has %d partitions, requested %d (partitions can only be added)",
			ErrInvalidPartitions, t.name, have, count)
	}
	img := n.mm.Image()
	rf := len(t.state[0].Replicas)
	if assign != nil {
		if len(assign) != int(count-have) {
			return fmt.Errorf("%w: %d assignments for %d new partitions", ErrInvalidAssignment, len(assign), count-have)
		}
		if err := checkAssignment(img, assign, rf); err != nil {
			return err
		}
	} else {
		live := liveBrokers(img)
		if rf > len(live) {
			return fmt.Errorf("%w: replication factor %d, %d unfenced brokers", ErrInvalidReplication, rf, len(live))
		}
		var err error
		if assign, err = meta.Place(live, int(count-have), rf, int(have)%max(1, len(live))); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidReplication, err)
		}
	}
	if validateOnly {
		return nil
	}
	assign = slices.Clip(assign)
	if err := n.commit(ctx, meta.CreatePartitions{TopicID: t.id, Assignments: assign}); err != nil {
		return err
	}
	n.lg.Info("partitions added", "topic", t.name, "partitions", count)
	return nil
}
