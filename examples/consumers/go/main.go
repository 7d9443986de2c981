// A Go consumer of the REGSOSEK linkage topics with franz-go (docs/consuming.md).
//
// It prints one JSON line per record: topic, partition, offset, key, value (null for a tombstone) and
// headers. Offsets are committed after the records of each poll are printed (at-least-once).
//
//	go build -o consume . && ./consume -bootstrap 127.0.0.1:19092 -topic linkage.members.v1 \
//	    -group integration.dwh.members
//
// On a secured broker add -sasl-user and -sasl-password-file (SCRAM-SHA-512 over SASL_PLAINTEXT).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// line is what is printed for each record.
type line struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       *string           `json:"key"`
	Value     json.RawMessage   `json:"value"` // the record's JSON as sent, or null for a tombstone
	Headers   map[string]string `json:"headers"`
}

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:19092", "broker address(es), comma-separated")
	topic := flag.String("topic", "linkage.members.v1", "topic to read")
	group := flag.String("group", "", "consumer group (on a secured broker: one of your granted prefix)")
	maxRecords := flag.Int("max-records", 0, "stop after this many records (0: run until interrupted)")
	user := flag.String("sasl-user", "", "SCRAM-SHA-512 user name (secured broker only)")
	passwordFile := flag.String("sasl-password-file", "", "file holding the SCRAM password")
	flag.Parse()
	if *group == "" {
		fail("-group is required")
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumerGroup(*group),
		// A new group starts at the beginning: on a compacted topic that is the whole current state.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	}
	if *user != "" {
		password, err := os.ReadFile(*passwordFile)
		if err != nil {
			fail("cannot read the SASL password: " + err.Error())
		}
		auth := scram.Auth{User: *user, Pass: strings.TrimSpace(string(password))}
		opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		fail(err.Error())
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out := json.NewEncoder(os.Stdout)
	seen := 0
	for *maxRecords == 0 || seen < *maxRecords {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail(fmt.Sprintf("fetching %s[%d]: %v", t, p, err))
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if err := out.Encode(toLine(r)); err != nil {
				fail(err.Error())
			}
			seen++
		})
		// Commit only what was printed: a crash before this line reads those records again.
		if err := client.CommitUncommittedOffsets(ctx); err != nil {
			fail("commit failed: " + err.Error())
		}
	}
}

func toLine(r *kgo.Record) line {
	l := line{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Headers: map[string]string{}}
	if r.Key != nil {
		key := string(r.Key)
		l.Key = &key
	}
	switch {
	case r.Value == nil:
		l.Value = json.RawMessage("null") // tombstone: the key was deleted
	case json.Valid(r.Value):
		l.Value = json.RawMessage(r.Value)
	default: // not JSON: never on the linkage topics; print it as a string rather than stop
		text, _ := json.Marshal(string(r.Value))
		l.Value = text
	}
	for _, h := range r.Headers {
		l.Headers[h.Key] = string(h.Value)
	}
	return l
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "error:", message)
	os.Exit(1)
}
