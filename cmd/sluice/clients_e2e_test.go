package main

// Real Kafka clients against a `sluice dev` cluster: kcat (librdkafka, the
// Debian build) over plaintext and TLS, Sarama with its default
// configuration, and franz-go with idempotence over TLS. Every record comes
// back in order with its key, value, headers and timestamp.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	return p
}

func runKcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %q: %v\nstderr:\n%s", args, err, errb.String())
	}
	return out.String()
}

func TestKcat(t *testing.T) {
	d := startDev(t, 1)
	n := d.cf.Nodes[0]
	listeners := []struct {
		name string
		args []string
	}{
		{"plaintext", []string{"-b", n.ClientPlain}},
		{"tls", []string{"-b", n.Client, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + d.cf.CAFile}},
	}
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			topic := "kcat-" + l.name
			if _, err := d.cli("", "topic", "create", topic, "--partitions", "1"); err != nil {
				t.Fatal(err)
			}
			var in strings.Builder
			for i := range 200 {
				fmt.Fprintf(&in, "key-%d:value-%d\n", i, i)
			}
			before := time.Now().Add(-time.Second).UnixMilli()
			runKcat(t, in.String(), append(l.args, "-t", topic, "-P", "-K:", "-H", "source=kcat", "-H", "n=1")...)
			after := time.Now().Add(time.Second).UnixMilli()
			// Read back through both listeners: what one wrote, the other serves identically.
			for _, r := range listeners {
				out := runKcat(t, "", append(r.args, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h|%T|%o\n")...)
				got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if len(got) != 200 {
					t.Fatalf("read via %s: %d records, want 200:\n%s", r.name, len(got), out)
				}
				for i, line := range got {
					f := strings.Split(line, "|")
					if len(f) != 5 {
						t.Fatalf("line %q", line)
					}
					if f[0] != fmt.Sprintf("key-%d", i) || f[1] != fmt.Sprintf("value-%d", i) || f[4] != strconv.Itoa(i) {
						t.Fatalf("record %d via %s = %q", i, r.name, line)
					}
					if f[2] != "source=kcat,n=1" {
						t.Fatalf("record %d headers = %q", i, f[2])
					}
					ts, err := strconv.ParseInt(f[3], 10, 64)
					if err != nil || ts < before || ts > after {
						t.Fatalf("record %d timestamp %q outside [%d, %d]", i, f[3], before, after)
					}
				}
			}
			meta := runKcat(t, "", append(l.args, "-L", "-t", topic)...)
			if !strings.Contains(meta, `topic "`+topic+`" with 1 partitions`) {
				t.Fatalf("kcat -L:\n%s", meta)
			}
		})
	}
}

func TestSaramaDefaultConfig(t *testing.T) {
	d := startDev(t, 1)
	addr := []string{d.cf.Nodes[0].ClientPlain}
	topic := "sarama"
	if _, err := d.cli("", "topic", "create", topic, "--partitions", "1"); err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig() // the default configuration, as an application would have it
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Millisecond).Add(-time.Hour)
	const total = 100
	for i := range total {
		msg := &sarama.ProducerMessage{
			Topic:     topic,
			Key:       sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value:     sarama.StringEncoder(fmt.Sprintf("v%d", i)),
			Headers:   []sarama.RecordHeader{{Key: []byte("h"), Value: []byte(strconv.Itoa(i))}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
		if _, off, err := prod.SendMessage(msg); err != nil || off != int64(i) {
			t.Fatalf("send %d: offset %d, %v", i, off, err)
		}
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumer(addr, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	timeout := time.After(30 * time.Second)
	for i := range total {
		select {
		case m := <-pc.Messages():
			if string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) || m.Offset != int64(i) {
				t.Fatalf("message %d = %s/%s@%d", i, m.Key, m.Value, m.Offset)
			}
			if len(m.Headers) != 1 || string(m.Headers[0].Key) != "h" || string(m.Headers[0].Value) != strconv.Itoa(i) {
				t.Fatalf("message %d headers = %v", i, m.Headers)
			}
			if !m.Timestamp.Equal(base.Add(time.Duration(i) * time.Millisecond)) {
				t.Fatalf("message %d timestamp %v, want %v", i, m.Timestamp, base.Add(time.Duration(i)*time.Millisecond))
			}
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("timed out after %d messages", i)
		}
	}
}

func TestFranzGoIdempotentTLS(t *testing.T) {
	d := startDev(t, 1)
	topic := "franz"
	if _, err := d.cli("", "topic", "create", topic, "--partitions", "2"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(d.cf.Nodes[0].Client),
		kgo.DialTLSConfig(d.tlsConfig(t)),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := time.UnixMilli(1_700_000_000_000)
	const total = 500
	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, &kgo.Record{
			Partition: int32(i % 2),
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     bytes.Repeat([]byte{byte(i)}, 100+i),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}},
			Timestamp: base.Add(time.Duration(i) * time.Second),
		})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	next := map[int32]int{0: 0, 1: 1}
	for seen := 0; seen < total; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			i := next[r.Partition]
			next[r.Partition] += 2
			seen++
			if string(r.Key) != fmt.Sprintf("k%d", i) || !bytes.Equal(r.Value, recs[i].Value) ||
				len(r.Headers) != 1 || string(r.Headers[0].Value) != strconv.Itoa(i) || !r.Timestamp.Equal(recs[i].Timestamp) {
				t.Fatalf("partition %d record %d mismatch: key %s, %d bytes, headers %v, ts %v", r.Partition, i, r.Key, len(r.Value), r.Headers, r.Timestamp)
			}
		})
	}
}
