// Package topictest starts an embedded Kafka broker over real TCP with
// Ogma's topics created, for tests.
package topictest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Partitions is the partition count of a test cluster.
const Partitions = 3

// Cluster is a running test broker with Ogma's topics.
type Cluster struct {
	Broker *broker.Broker
	Dial   topic.Dial
	Layout topic.Layout
}

// New starts a broker, creates every topic with [Partitions] partitions,
// and stops the broker when the test ends.
func New(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	b, err := broker.Start(t.Context(), broker.Config{Opts: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	dial := topic.Seeds(b.Addrs())
	l, err := topic.Ensure(t.Context(), dial, Partitions)
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Broker: b, Dial: dial, Layout: l}
}

// Records returns every committed record of topic, all partitions, in
// partition then offset order.
func (c *Cluster) Records(t testing.TB, name string) []*kgo.Record {
	t.Helper()
	parts := topic.Partitions(c.Layout.Partitions)
	for _, s := range topic.All {
		if s.Name == name && !s.Partitioned {
			parts = []int32{0}
		}
	}
	var out []*kgo.Record
	err := topic.ReadToEnd(t.Context(), c.Dial, name, parts, func(r *kgo.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Events returns every committed ogma.events record, in partition then
// offset order, decoded, its data opened under its tenant's key from
// ogma.keys; an erased tenant's stay sealed.
func (c *Cluster) Events(t testing.TB) []*event.Record {
	t.Helper()
	keys := datakey.New(c.Dial, c.Layout)
	var out []*event.Record
	for _, r := range c.Records(t, topic.Events) {
		out = append(out, OpenEvent(t, keys, r.Value))
	}
	return out
}

// OpenEvent decodes an ogma.events record value and opens its data under
// its tenant's key in keys, which reads ogma.keys for a key it lacks; an
// erased tenant's record stays sealed.
func OpenEvent(t testing.TB, keys *datakey.Keys, value []byte) *event.Record {
	t.Helper()
	e, err := event.DecodeRecord(value)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Open(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

// Drained reports whether group has committed offsets at the end of every
// ogma.raw partition, but for slack offsets (a transaction's commit marker
// takes one after its last record). Otherwise it says what is behind.
func Drained(ctx context.Context, dial topic.Dial, group string, slack int64) (bool, string) {
	return DrainedTopic(ctx, dial, group, topic.Raw, slack)
}

// DrainedTopic is [Drained] for the partitions of the topic name.
func DrainedTopic(ctx context.Context, dial topic.Dial, group, name string, slack int64) (bool, string) {
	cl, err := dial()
	if err != nil {
		return false, err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return false, err.Error()
	}
	l, ok := lags[group]
	if !ok || l.Error() != nil {
		return false, fmt.Sprintf("group: %v", l.Error())
	}
	raw := l.Lag[name]
	if len(raw) == 0 {
		return false, "no offsets committed"
	}
	var behind []string
	for p, pl := range raw {
		if pl.Err != nil || pl.Lag > slack {
			member := "none"
			if pl.Member != nil {
				member = pl.Member.ClientID
				if pl.Member.InstanceID != nil {
					member = *pl.Member.InstanceID
				}
			}
			behind = append(behind, fmt.Sprintf("partition %d: committed %d, end %d, member %s, err %v",
				p, pl.Commit.At, pl.End.Offset, member, pl.Err))
		}
	}
	if len(behind) == 0 {
		return true, ""
	}
	if lso, err := adm.ListCommittedOffsets(ctx, name); err == nil {
		lso.Each(func(o kadm.ListedOffset) {
			behind = append(behind, fmt.Sprintf("partition %d: last stable offset %d", o.Partition, o.Offset))
		})
	}
	if txns, err := adm.ListTransactions(ctx, nil, nil); err == nil {
		for _, tx := range txns.Sorted() {
			behind = append(behind, fmt.Sprintf("transaction %s: %s", tx.TxnID, tx.State))
		}
	}
	slices.Sort(behind)
	return false, strings.Join(behind, "; ")
}

// WaitDrained waits up to 3 minutes until [Drained]; on timeout it writes
// this process's goroutines to a file and fails with what is behind.
func WaitDrained(t testing.TB, dial topic.Dial, group string, slack int64) {
	t.Helper()
	var why string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var ok bool
		if ok, why = Drained(t.Context(), dial, group, slack); ok {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			path := filepath.Join(os.TempDir(), "ogma-drain-goroutines.txt")
			os.WriteFile(path, []byte(b.String()), 0o600)
			t.Fatalf("timed out waiting for group %s to read every raw record (goroutines in %s): %s", group, path, why)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition under a deadline
	}
}

// UsageRows returns n raw usage rows of tenant, placed for l: settled
// daily buckets of 100 rows, every row a new fact — the input of the
// benchmarks.
func UsageRows(l topic.Layout, tenant string, n int) []*kgo.Record {
	group := []string{"api_key_id", "batch", "model", "project_id", "service_tier", "user_id"}
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		day := int64(1780000000/86400+i/100) * 86400
		r := &envelope.Raw{V: 1, Tenant: tenant, Vendor: "openai", Stream: "usage.completions",
			FetchedAt: time.Unix(day+3*86400, 0).UTC(), Salt: envelope.NewSalt(), GroupSet: group,
			Bucket: &envelope.Bucket{Start: day, End: day + 86400, Width: "1d", Rows: 100, Row: i % 100},
			Data: json.RawMessage(fmt.Sprintf(`{"object":"organization.usage.completions.result","input_tokens":%d,"output_tokens":%d,`+
				`"input_cached_tokens":0,"num_model_requests":3,"project_id":"proj_abc","user_id":"user-%d","api_key_id":"key_%d",`+
				`"model":"gpt-6-sol","batch":false,"service_tier":"default"}`, 1000+i, 500+i, i%100, i%100))}
		recs = append(recs, l.Record(topic.Raw, tenant, []byte(r.Key()), r.Marshal()))
	}
	return recs
}

// Produce writes recs, already placed, and waits until they are stored.
func (c *Cluster) Produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	cl, err := c.Dial(topic.ProducerOpt())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// ProduceEvents writes recs to ogma.events, each on its tenant's
// partition, and waits until they are stored: sealed, as the processor
// writes them, under each tenant's data key in ogma.keys (made and
// published first when it has none).
func (c *Cluster) ProduceEvents(t testing.TB, recs ...*event.Record) {
	t.Helper()
	keys := datakey.New(c.Dial, c.Layout)
	if err := keys.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	var krs []*kgo.Record
	for _, r := range recs {
		sealed := *r
		if r.Sealed == nil {
			aead, pending, err := keys.Key(r.Event.Tenant, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if pending != nil {
				krs = append(krs, pending)
				keys.Commit(r.Event.Tenant)
			}
			if sealed.Sealed, err = event.SealData(aead, r.Event.Tenant, r.Event.DataDigest, r.Data, r.Salt); err != nil {
				t.Fatal(err)
			}
		}
		krs = append(krs, c.Layout.Record(topic.Events, r.Event.Tenant, nil, sealed.Marshal()))
	}
	c.Produce(t, krs...)
}
