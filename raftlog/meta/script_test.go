package meta

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the scripts")

// TestScripts runs the command scripts in testdata/*.script and compares
// the transcript (each command, its outcome, the delta and every broker's
// local reactions) with testdata/*.golden.
//
// Script syntax, one command per line ('#' starts a comment):
//
//	register <node> [rack=R] [inc=N] [cluster=C]
//	fence|unfence|alloc <node> [epoch=E]          (default: current epoch)
//	create <topic> <id byte> <replicas> ...       (replicas as 1,2,3)
//	delete <topic>
//	addparts <topic> <replicas> ...
//	change <topic>/<p> leader=L isr=1,2 [le=E] [pe=E]   (default: current epochs)
//	alter <node> [epoch=E] <topic>/<p>:<isr>[:<le>.<pe>] ...
//	      (one item per operand; a member is N or N@E for broker epoch E,
//	      default unchecked; the item's epochs default to the current ones)
func TestScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "*.script"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range scripts {
		t.Run(filepath.Base(path), func(t *testing.T) {
			got := runScript(t, path)
			golden := strings.TrimSuffix(path, ".script") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("transcript differs from %s (rerun with -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

func runScript(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	var img *Image
	index := uint64(0)
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			out.WriteString(sc.Text() + "\n")
			continue
		}
		cmd, err := parseScriptCommand(img, text)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		index++
		next, d, err := Apply(img, index, cmd)
		fmt.Fprintf(&out, "> %s\n", text)
		if err != nil {
			fmt.Fprintf(&out, "  rejected: %s\n", errClass(err))
			continue
		}
		writeDelta(&out, next, d)
		img = next
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeDelta(out *bytes.Buffer, img *Image, d Delta) {
	if !d.Changed() {
		out.WriteString("  no change\n")
	}
	for _, bc := range d.Brokers {
		b := bc.New
		fmt.Fprintf(out, "  broker %d: epoch %d rack %q fenced %v\n", b.NodeID, b.Epoch, b.Rack, b.Fenced)
	}
	for _, pc := range d.Partitions {
		if pc.New == nil {
			fmt.Fprintf(out, "  %s/%d: deleted\n", pc.Topic, pc.Partition)
			continue
		}
		p := pc.New
		fmt.Fprintf(out, "  %s/%d: replicas %v isr %v leader %d epochs %d/%d\n", pc.Topic, pc.Partition, p.Replicas, p.ISR, p.Leader, p.LeaderEpoch, p.PartitionEpoch)
	}
	if b := d.ProducerIDs; b != nil {
		fmt.Fprintf(out, "  producer ids: node %d [%d, %d)\n", b.NodeID, b.FirstID, b.FirstID+b.Count)
	}
	for _, r := range d.Rejected {
		name := r.TopicID.String()
		if top, ok := img.Topic(r.TopicID); ok {
			name = top.Name
		}
		fmt.Fprintf(out, "  rejected %s/%d: %s\n", name, r.Partition, errClass(r.Err))
	}
	for _, br := range img.Brokers() {
		for _, lc := range d.LocalChanges(br.NodeID) {
			fmt.Fprintf(out, "  node %d: %s %s/%d\n", br.NodeID, lc.Kind, lc.Topic, lc.Partition)
		}
	}
}

func parseScriptCommand(img *Image, text string) (cmd Command, err error) {
	var numErr error
	defer func() {
		if err == nil && numErr != nil {
			cmd, err = nil, numErr
		}
	}()
	fields := strings.Fields(text)
	args := map[string]string{}
	var pos []string
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil && numErr == nil {
			numErr = fmt.Errorf("bad number %q in %q", s, text)
		}
		return n
	}
	list := func(s string) []int32 {
		var out []int32
		for _, x := range strings.Split(s, ",") {
			out = append(out, int32(num(x)))
		}
		return out
	}
	epoch := func(node int32) int64 {
		if e, ok := args["epoch"]; ok {
			return num(e)
		}
		b, _ := img.Broker(node)
		return b.Epoch
	}
	topic := func(name string) TopicID {
		if top, ok := img.TopicByName(name); ok {
			return top.ID
		}
		return TopicID{0xff}
	}
	if len(pos) == 0 {
		return nil, fmt.Errorf("missing operand in %q", text)
	}
	switch fields[0] {
	case "register":
		node := int32(num(pos[0]))
		inc := int64(1)
		if s, ok := args["inc"]; ok {
			inc = num(s)
		}
		cluster := "cluster"
		if s, ok := args["cluster"]; ok {
			cluster = s
		}
		return RegisterBroker{NodeID: node, ClusterID: cluster, Incarnation: [16]byte{byte(node), byte(inc)}, Rack: args["rack"]}, nil
	case "fence":
		node := int32(num(pos[0]))
		return FenceBroker{NodeID: node, BrokerEpoch: epoch(node)}, nil
	case "unfence":
		node := int32(num(pos[0]))
		return UnfenceBroker{NodeID: node, BrokerEpoch: epoch(node)}, nil
	case "alloc":
		node := int32(num(pos[0]))
		return AllocateProducerIDs{NodeID: node, BrokerEpoch: epoch(node)}, nil
	case "create":
		c := CreateTopic{Name: pos[0], TopicID: TopicID{0: byte(num(pos[1])), 15: 1}}
		for _, p := range pos[2:] {
			c.Partitions = append(c.Partitions, list(p))
		}
		return c, nil
	case "delete":
		return DeleteTopic{TopicID: topic(pos[0])}, nil
	case "addparts":
		c := CreatePartitions{TopicID: topic(pos[0])}
		for _, p := range pos[1:] {
			c.Assignments = append(c.Assignments, list(p))
		}
		return c, nil
	case "alter":
		node := int32(num(pos[0]))
		c := AlterPartition{ProposerID: node, ProposerEpoch: epoch(node)}
		for _, op := range pos[1:] {
			parts := strings.Split(op, ":")
			if len(parts) < 2 || len(parts) > 3 {
				return nil, fmt.Errorf("bad alter item %q in %q", op, text)
			}
			name, ps, _ := strings.Cut(parts[0], "/")
			it := AlterPartitionItem{TopicID: topic(name), Partition: int32(num(ps))}
			cur, _ := img.Partition(it.TopicID, it.Partition)
			it.LeaderEpoch, it.PartitionEpoch = cur.LeaderEpoch, cur.PartitionEpoch
			if len(parts) == 3 {
				le, pe, _ := strings.Cut(parts[2], ".")
				it.LeaderEpoch, it.PartitionEpoch = int32(num(le)), int32(num(pe))
			}
			for _, m := range strings.Split(parts[1], ",") {
				id, e, hasEpoch := strings.Cut(m, "@")
				mem := ISRMember{ID: int32(num(id)), BrokerEpoch: NoBrokerEpoch}
				if hasEpoch {
					mem.BrokerEpoch = num(e)
				}
				it.ISR = append(it.ISR, mem)
			}
			c.Partitions = append(c.Partitions, it)
		}
		return c, nil
	case "change":
		name, ps, _ := strings.Cut(pos[0], "/")
		id := topic(name)
		p := int32(num(ps))
		cur, _ := img.Partition(id, p)
		c := ChangePartition{TopicID: id, Partition: p, Leader: int32(num(args["leader"])), ISR: list(args["isr"]),
			LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch}
		if s, ok := args["le"]; ok {
			c.LeaderEpoch = int32(num(s))
		}
		if s, ok := args["pe"]; ok {
			c.PartitionEpoch = int32(num(s))
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown command %q", fields[0])
}
