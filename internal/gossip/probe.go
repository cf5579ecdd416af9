package gossip

import (
	"net"
	"time"
)

// probeLoop pings, once per ProbeInterval, every member memberlist holds as
// alive (or we hold as suspect), at most one ping per member in flight. The
// outcome feeds pingResult. memberlist's own successful probes feed it too
// (NotifyPingComplete), so a member answering either is not suspected.
func (m *Membership) probeLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	type target struct {
		name string
		addr *net.UDPAddr
	}
	var targets []target
	for {
		select {
		case <-t.C:
		case <-m.done:
			return
		}
		targets = targets[:0]
		m.mu.Lock()
		if m.left {
			m.mu.Unlock()
			continue // we no longer take part; our view is frozen
		}
		for name, e := range m.members {
			if name == m.self || e.probing || e.udp == nil {
				continue
			}
			if e.member.State != StateAlive && e.member.State != StateSuspect {
				continue
			}
			e.probing = true
			targets = append(targets, target{name, e.udp})
		}
		m.mu.Unlock()
		for _, tg := range targets {
			m.wg.Add(1)
			go m.ping(tg.name, tg.addr)
		}
	}
}

// ping sends one memberlist ping (it waits at most ProbeTimeout).
func (m *Membership) ping(name string, addr *net.UDPAddr) {
	defer m.wg.Done()
	_, err := m.ml.Ping(name, addr)
	m.mu.Lock()
	if e, ok := m.members[name]; ok {
		e.probing = false
	}
	m.mu.Unlock()
	if m.isShutdown() {
		return
	}
	m.pingResult(name, err)
}
