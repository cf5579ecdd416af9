package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSarama produces and consumes with Sarama at its default version and at V2_1_0_0 (the default
// of older releases: Produce v7, Fetch v10, Metadata v7, ListOffsets v4), idempotent and not, over
// plaintext and TLS.
func TestSarama(t *testing.T) {
	e := startNode(t, "", nil)
	for i, tc := range []struct {
		version sarama.KafkaVersion
		tls     bool
		idem    bool
	}{
		{sarama.DefaultVersion, false, true},
		{sarama.DefaultVersion, true, false},
		{sarama.V2_1_0_0, false, false},
		{sarama.V2_1_0_0, true, true},
	} {
		t.Run(fmt.Sprintf("%s/tls=%v/idempotent=%v", tc.version, tc.tls, tc.idem), func(t *testing.T) {
			topic := fmt.Sprintf("sarama-%d", i)
			cfg := sarama.NewConfig()
			cfg.Version = tc.version
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			if tc.idem {
				cfg.Producer.Idempotent = true
				cfg.Net.MaxOpenRequests = 1
			}
			cfg.Metadata.AllowAutoTopicCreation = true
			addr := e.n.Addrs().ClientPlain
			if tc.tls {
				cfg.Net.TLS.Enable = true
				cfg.Net.TLS.Config = e.tlsConf.Clone()
				addr = e.n.Addrs().Client
			}
			prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			const n = 50
			for j := range n {
				msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint("k", j)),
					Value:     sarama.ByteEncoder(bytes.Repeat([]byte{'v'}, j+1)),
					Headers:   []sarama.RecordHeader{{Key: []byte("h"), Value: []byte(fmt.Sprint(j))}},
					Timestamp: time.UnixMilli(1_700_000_000_000 + int64(j))}
				_, off, err := prod.SendMessage(msg)
				if err != nil {
					t.Fatalf("send %d: %v", j, err)
				}
				if off != int64(j) {
					t.Fatalf("message %d at offset %d", j, off)
				}
			}
			cons, err := sarama.NewConsumer([]string{addr}, cfg)
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
			for j := range n {
				select {
				case m := <-pc.Messages():
					if m.Offset != int64(j) || string(m.Key) != fmt.Sprint("k", j) || len(m.Value) != j+1 ||
						len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(j) ||
						m.Timestamp.UnixMilli() != 1_700_000_000_000+int64(j) {
						t.Fatalf("message %d: offset %d key %q value %d bytes headers %v ts %v", j, m.Offset, m.Key, len(m.Value), m.Headers, m.Timestamp)
					}
				case err := <-pc.Errors():
					t.Fatal(err)
				case <-timeout:
					t.Fatalf("consumed %d of %d", j, n)
				}
			}
			client, err := sarama.NewClient([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if off, err := client.GetOffset(topic, 0, sarama.OffsetNewest); err != nil || off != n {
				t.Fatalf("newest offset %d, %v", off, err)
			}
		})
	}
}

// TestKcat produces and consumes with kcat (librdkafka) over plaintext and TLS, with idempotence.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not installed (CI installs it; apt-get install kcat): %v", err)
	}
	e := startNode(t, "", nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	// The test config's CA is the one in the RootCAs pool; write it from the dev files.
	if err := os.WriteFile(caFile, e.caPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			topic := fmt.Sprintf("kcat-%v", useTLS)
			args := []string{"-b", e.n.Addrs().ClientPlain}
			if useTLS {
				args = []string{"-b", e.n.Addrs().Client, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + caFile}
			}
			e.createTopic(topic, 1, nil)
			var in strings.Builder
			for i := range 100 {
				fmt.Fprintf(&in, "key%d:value%d\n", i, i)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			prod := exec.CommandContext(ctx, kcat, append(args, "-P", "-t", topic, "-K:", "-X", "enable.idempotence=true", "-X", "acks=all")...)
			prod.Stdin = strings.NewReader(in.String())
			if out, err := prod.CombinedOutput(); err != nil {
				t.Fatalf("kcat produce: %v\n%s", err, out)
			}
			cons := exec.CommandContext(ctx, kcat, append(args, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%k:%s:%o\n")...)
			out, err := cons.Output()
			if err != nil {
				t.Fatalf("kcat consume: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 100 {
				t.Fatalf("kcat consumed %d lines:\n%s", len(lines), out)
			}
			for i, l := range lines {
				if want := fmt.Sprintf("key%d:value%d:%d", i, i, i); l != want {
					t.Fatalf("line %d: %q, want %q", i, l, want)
				}
			}
			// And kgo reads what librdkafka wrote: the same 100 records, in order.
			cl := e.client(useTLS, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			var recs []*kgo.Record
			for len(recs) < 100 {
				fs := cl.PollFetches(ctx)
				if errs := fs.Errors(); len(errs) > 0 {
					t.Fatalf("kgo fetch errors after %d records: %v", len(recs), errs)
				}
				if fs.NumRecords() == 0 && len(recs) == 0 {
					t.Fatal("kgo read nothing")
				}
				recs = append(recs, fs.Records()...)
			}
			if len(recs) != 100 {
				t.Fatalf("kgo read %d records, want 100", len(recs))
			}
			for i, r := range recs {
				wantKey, wantValue := fmt.Sprintf("key%d", i), fmt.Sprintf("value%d", i)
				if string(r.Key) != wantKey || string(r.Value) != wantValue || r.Offset != int64(i) {
					t.Fatalf("kgo record %d: offset %d key %q value %q, want offset %d key %q value %q",
						i, r.Offset, r.Key, r.Value, i, wantKey, wantValue)
				}
			}
		})
	}
}
