package meta

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// ErrNotEnoughBrokers reports a replication factor above the number of
// unfenced brokers.
var ErrNotEnoughBrokers = errors.New("meta: not enough unfenced brokers")

// BrokerInfo is what placement needs to know about a broker.
type BrokerInfo struct {
	NodeID int32
	Rack   string // empty: no rack
	Fenced bool   // fenced brokers receive no replicas
}

// PlacementBrokers returns the image's brokers as placement input.
func (img *Image) PlacementBrokers() []BrokerInfo {
	var out []BrokerInfo
	for _, b := range img.Brokers() {
		out = append(out, BrokerInfo{NodeID: b.NodeID, Rack: b.Rack, Fenced: b.Fenced})
	}
	return out
}

// Place assigns rf replicas to each of partitions partitions over the
// unfenced brokers, preferred leader first. It is deterministic: the input
// order of brokers does not matter, and start (for example the number of
// partitions that already exist, or a hash of the topic name) rotates where
// the first leader lands so that topics do not all lead on one broker.
//
// Brokers are put in a rack-alternating ring: racks sorted by name, brokers
// by id within a rack, then taken one per rack in turn. Partition i (counted
// from start) is led by ring[i mod n], so over any n consecutive partitions
// each broker leads exactly once, and consecutive leaders sit in different
// racks. Followers are taken walking the ring from an offset that grows by
// one every n partitions and with start (spreading which brokers follow
// which leader), skipping brokers whose rack the partition already uses until every rack
// holds a replica. Without racks, every block of n partitions gives each
// broker exactly rf replicas.
func Place(brokers []BrokerInfo, partitions, rf, start int) ([][]int32, error) {
	if partitions <= 0 || rf <= 0 || start < 0 {
		return nil, fmt.Errorf("%w: %d partitions, replication factor %d, start %d", ErrInvalidAssignment, partitions, rf, start)
	}
	ring, racks := rackRing(brokers)
	n := len(ring)
	if rf > n {
		return nil, fmt.Errorf("%w: replication factor %d, %d brokers", ErrNotEnoughBrokers, rf, n)
	}
	out := make([][]int32, partitions)
	used := make([]bool, n)
	for p := range out {
		i := start + p
		lead := i % n
		reps := make([]int32, 0, rf)
		reps = append(reps, ring[lead].NodeID)
		clear(used)
		used[lead] = true
		rackUsed := map[string]bool{ring[lead].Rack: true}
		shift := 1
		if n > 1 {
			// Constant within each block of n partitions (which places every
			// broker as leader once), so each block is balanced exactly.
			shift = 1 + (p/n+start)%(n-1)
		}
		// First pass: only new racks; second pass: anything unused.
		for pass := 0; pass < 2 && len(reps) < rf; pass++ {
			for k := 0; k < n && len(reps) < rf; k++ {
				j := (lead + shift + k) % n
				if used[j] || (pass == 0 && rackUsed[ring[j].Rack] && len(rackUsed) < racks) {
					continue
				}
				used[j] = true
				rackUsed[ring[j].Rack] = true
				reps = append(reps, ring[j].NodeID)
			}
		}
		out[p] = reps
	}
	return out, nil
}

// rackRing orders the unfenced brokers rack-alternately and returns the
// number of distinct racks.
func rackRing(brokers []BrokerInfo) ([]BrokerInfo, int) {
	var live []BrokerInfo
	for _, b := range brokers {
		if !b.Fenced {
			live = append(live, b)
		}
	}
	slices.SortFunc(live, func(a, b BrokerInfo) int {
		return cmp.Or(cmp.Compare(a.Rack, b.Rack), cmp.Compare(a.NodeID, b.NodeID))
	})
	live = slices.CompactFunc(live, func(a, b BrokerInfo) bool { return a.NodeID == b.NodeID && a.Rack == b.Rack })
	var byRack [][]BrokerInfo
	for i, b := range live {
		if i == 0 || b.Rack != live[i-1].Rack {
			byRack = append(byRack, nil)
		}
		byRack[len(byRack)-1] = append(byRack[len(byRack)-1], b)
	}
	ring := make([]BrokerInfo, 0, len(live))
	for depth := 0; len(ring) < len(live); depth++ {
		for _, rack := range byRack {
			if depth < len(rack) {
				ring = append(ring, rack[depth])
			}
		}
	}
	return ring, len(byRack)
}
