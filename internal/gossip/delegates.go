package gossip

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegates implements memberlist's callback interfaces for a Membership.
//
// memberlist calls NotifyJoin, NotifyLeave, NotifyUpdate, NotifyAlive and
// NotifyConflict while holding its node lock, so these methods only copy
// what they need and take m.mu; they never call back into memberlist.
type delegates struct {
	m *Membership
}

var (
	_ memberlist.Delegate         = (*delegates)(nil)
	_ memberlist.EventDelegate    = (*delegates)(nil)
	_ memberlist.AliveDelegate    = (*delegates)(nil)
	_ memberlist.ConflictDelegate = (*delegates)(nil)
	_ memberlist.PingDelegate     = (*delegates)(nil)
)

// NodeMeta returns our encoded meta (validated against limit when set).
func (d *delegates) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.metaBytes) > limit {
		// Unreachable: SetMeta and Start check MaxMetaSize, which is
		// memberlist's limit. Sending no meta is safer than panicking.
		return nil
	}
	return d.m.metaBytes
}

func (d *delegates) NotifyMsg([]byte)                           {}
func (d *delegates) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegates) LocalState(join bool) []byte                { return nil }
func (d *delegates) MergeRemoteState(buf []byte, join bool)     {}

// NotifyAlive vets every alive message before memberlist applies it: a peer
// whose meta does not decode, or whose name does not match the node id in
// its meta, is not let in.
func (d *delegates) NotifyAlive(n *memberlist.Node) error {
	_, err := decodeNodeMeta(n)
	if err != nil {
		d.m.rejectedMeta.Add(1)
		return err
	}
	return nil
}

// NotifyConflict reports two live nodes claiming the same node id.
func (d *delegates) NotifyConflict(existing, other *memberlist.Node) {
	d.m.log.Error("gossip: two brokers claim the same node id",
		"node", existing.Name, "existing_addr", existing.Address(), "other_addr", other.Address())
}

func (d *delegates) NotifyJoin(n *memberlist.Node)   { d.m.observe(n, StateAlive) }
func (d *delegates) NotifyUpdate(n *memberlist.Node) { d.m.observe(n, StateAlive) }

// NotifyLeave covers both a crash and a graceful leave: memberlist's Node
// carries no state here (its Node.State field is never filled in), so the
// Leaving flag in the member's last meta tells them apart.
func (d *delegates) NotifyLeave(n *memberlist.Node) { d.m.observe(n, StateDead) }

// AckPayload sends nothing extra with acks.
func (d *delegates) AckPayload() []byte { return nil }

// NotifyPingComplete is memberlist's own direct probe succeeding: it counts
// as a successful ping for suspicion.
func (d *delegates) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	d.m.pingResult(other.Name, nil)
}

func decodeNodeMeta(n *memberlist.Node) (NodeMeta, error) {
	var meta NodeMeta
	if err := meta.UnmarshalBinary(n.Meta); err != nil {
		return meta, fmt.Errorf("gossip: node %s: %w", n.Name, err)
	}
	if want := nodeName(meta.NodeID); n.Name != want {
		return meta, fmt.Errorf("gossip: node %s carries meta for node id %d (%w)", n.Name, meta.NodeID, ErrMetaCorrupt)
	}
	return meta, nil
}

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}
