package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrProtocol reports a response the benchmark client cannot use: a broken
// frame, a wrong correlation id or a Kafka error code.
var ErrProtocol = errors.New("bench: protocol error")

// maxResponseBytes bounds one response frame the client accepts; fetches ask
// for at most 50 MiB, so anything far beyond is a broken size prefix.
const maxResponseBytes = 256 << 20

// kconn is a minimal Kafka client connection: one request at a time for
// control requests, raw frame writes and reads for the measured loops. It is
// owned by one goroutine, except that the produce loop writes from one
// goroutine and reads from another.
type kconn struct {
	nc       net.Conn
	fmt      *kmsg.RequestFormatter
	corr     int32
	rbuf     []byte
	versions map[int16]int16 // API key -> highest version both sides speak
}

// dialKafka connects to addr (TLS when tlsCfg is non-nil) and negotiates API
// versions with ApiVersions.
func dialKafka(ctx context.Context, addr string, tlsCfg *tls.Config) (*kconn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	var nc net.Conn
	var err error
	if tlsCfg != nil {
		td := tls.Dialer{NetDialer: &d, Config: tlsCfg}
		nc, err = td.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", addr, err)
	}
	c := &kconn{nc: nc, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-bench"))}
	if err := c.negotiate(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *kconn) Close() error { return c.nc.Close() }

// deadline applies ctx's deadline (or a default) to the connection.
func (c *kconn) deadline(ctx context.Context, def time.Duration) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(def)
	}
	_ = c.nc.SetDeadline(dl)
}

func (c *kconn) negotiate(ctx context.Context) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "sluice-bench"
	req.ClientSoftwareVersion = "1"
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.roundTrip(ctx, req, resp); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("%w: ApiVersions error %d", ErrProtocol, resp.ErrorCode)
	}
	c.versions = make(map[int16]int16, len(resp.ApiKeys))
	for _, k := range resp.ApiKeys {
		r := kmsg.RequestForKey(k.ApiKey)
		if r == nil {
			continue
		}
		v := min(k.MaxVersion, r.MaxVersion())
		if v >= k.MinVersion {
			c.versions[k.ApiKey] = v
		}
	}
	return nil
}

// version returns the highest common version of key, at most ceil.
func (c *kconn) version(key int16, ceil int16) (int16, error) {
	v, ok := c.versions[key]
	if !ok {
		return 0, fmt.Errorf("%w: broker does not serve API key %d", ErrProtocol, key)
	}
	return min(v, ceil), nil
}

// nextCorr returns a fresh correlation id.
func (c *kconn) nextCorr() int32 {
	c.corr++
	return c.corr
}

// roundTrip sends req (whose version is set) and decodes the response into
// resp (its version is set here).
func (c *kconn) roundTrip(ctx context.Context, req kmsg.Request, resp kmsg.Response) error {
	c.deadline(ctx, 30*time.Second)
	corr := c.nextCorr()
	if _, err := c.nc.Write(c.fmt.AppendRequest(nil, req, corr)); err != nil {
		return fmt.Errorf("bench: write %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	frame, err := c.readFrame()
	if err != nil {
		return fmt.Errorf("bench: read %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	resp.SetVersion(req.GetVersion())
	body, err := responseBody(frame, corr, resp.IsFlexible() && req.Key() != 18)
	if err != nil {
		return err
	}
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("%w: decode %s: %w", ErrProtocol, kmsg.NameForKey(req.Key()), err)
	}
	return nil
}

// readFrame reads one size-prefixed frame into the connection's reused
// buffer. The returned slice is valid until the next readFrame.
func (c *kconn) readFrame() ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(c.nc, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > maxResponseBytes {
		return nil, fmt.Errorf("%w: frame size %d", ErrProtocol, n)
	}
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	buf := c.rbuf[:n]
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// responseBody checks the correlation id of a response frame (without its
// size prefix) and skips the response header, returning the body.
func responseBody(frame []byte, corr int32, flexible bool) ([]byte, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d-byte response", ErrProtocol, len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("%w: correlation id %d, want %d", ErrProtocol, got, corr)
	}
	b := frame[4:]
	if !flexible {
		return b, nil
	}
	r := reader{b: b}
	r.skipTags()
	if r.err != nil {
		return nil, r.err
	}
	return r.b, nil
}

// createTopic creates a topic with the broker's default replication
// factor; an existing topic is fine.
func (c *kconn) createTopic(ctx context.Context, name string, partitions int32) error {
	return c.createTopicRF(ctx, name, partitions, -1)
}

// createTopicRF creates a topic with rf replicas (-1: the broker's
// default); an existing topic is fine.
func (c *kconn) createTopicRF(ctx context.Context, name string, partitions int32, rf int16) error {
	v, err := c.version(19, 7)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = v
	req.TimeoutMillis = 30000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = name
	t.NumPartitions = partitions
	t.ReplicationFactor = rf
	req.Topics = append(req.Topics, t)
	resp := kmsg.NewPtrCreateTopicsResponse()
	if err := c.roundTrip(ctx, req, resp); err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 && t.ErrorCode != 36 { // 36 TOPIC_ALREADY_EXISTS
			return fmt.Errorf("%w: create topic %s: error %d", ErrProtocol, t.Topic, t.ErrorCode)
		}
	}
	return nil
}

// deleteTopic deletes a topic; an unknown topic is fine.
func (c *kconn) deleteTopic(ctx context.Context, name string) error {
	v, err := c.version(20, 6)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = v
	req.TimeoutMillis = 30000
	req.TopicNames = []string{name}
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, t)
	resp := kmsg.NewPtrDeleteTopicsResponse()
	if err := c.roundTrip(ctx, req, resp); err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 && t.ErrorCode != 3 { // 3 UNKNOWN_TOPIC_OR_PARTITION
			return fmt.Errorf("%w: delete topic %s: error %d", ErrProtocol, name, t.ErrorCode)
		}
	}
	return nil
}

// endOffset returns the high watermark of partition 0 of topic (ListOffsets
// with timestamp -1).
func (c *kconn) endOffset(ctx context.Context, topic string) (int64, error) {
	v, err := c.version(2, 7)
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = v
	req.ReplicaID = -1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition = 0
	p.Timestamp = -1
	p.CurrentLeaderEpoch = -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp := kmsg.NewPtrListOffsetsResponse()
	if err := c.roundTrip(ctx, req, resp); err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("%w: ListOffsets answered %d topics", ErrProtocol, len(resp.Topics))
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		return 0, fmt.Errorf("%w: ListOffsets %s-0: error %d", ErrProtocol, topic, rp.ErrorCode)
	}
	return rp.Offset, nil
}
