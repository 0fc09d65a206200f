package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// benchRows is the number of raw usage rows each benchmark iteration reads.
const benchRows = 20000

// seedRaw fills ogma.raw with settled usage buckets of 100 distinct rows
// each, every row a new fact, for one tenant.
func seedRaw(b *testing.B, c *topictest.Cluster) int {
	cl, err := c.Dial(topic.ProducerOpt())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	group := []string{"api_key_id", "batch", "model", "project_id", "service_tier", "user_id"}
	var recs []*kgo.Record
	for i := range benchRows {
		day := int64(1780000000/86400+i/100) * 86400
		r := &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions",
			FetchedAt: time.Unix(day+3*86400, 0).UTC(), Salt: envelope.NewSalt(), GroupSet: group,
			Bucket: &envelope.Bucket{Start: day, End: day + 86400, Width: "1d", Rows: 100, Row: i % 100},
			Data: json.RawMessage(fmt.Sprintf(`{"object":"organization.usage.completions.result","input_tokens":%d,"output_tokens":%d,`+
				`"input_cached_tokens":0,"num_model_requests":3,"project_id":"proj_abc","user_id":"user-%d","api_key_id":"key_%d",`+
				`"model":"gpt-6-sol","batch":false,"service_tier":"default"}`, 1000+i, 500+i, i%100, i%100))}
		recs = append(recs, c.Layout.Record(topic.Raw, "acme", []byte(r.Key()), r.Marshal()))
	}
	if err := cl.ProduceSync(b.Context(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	return len(recs)
}

// drained waits until group has committed every raw record.
func drained(b *testing.B, c *topictest.Cluster, group string, n int) {
	cl, _ := c.Dial()
	defer cl.Close()
	adm := kadm.NewClient(cl)
	part := c.Layout.Partition("acme")
	for {
		offs, err := adm.FetchOffsets(b.Context(), group)
		if err == nil {
			if o, ok := offs.Lookup(topic.Raw, part); ok && o.At >= int64(n) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

// BenchmarkProcessor runs the processor over 20k raw usage rows beside a
// bare GroupTransactSession copy loop over the same input, in one run.
// Every iteration gets a new broker and the same rows, set up with the
// timer stopped, so each measures processing new input (restore has its
// own benchmark, BenchmarkRestore); the timer stops once the group has
// committed every row.
func BenchmarkProcessor(b *testing.B) {
	loops := []struct {
		name, unit string
		run        func(ctx context.Context, b *testing.B, c *topictest.Cluster, group string)
	}{
		{"copy", "records/s", copyLoop},
		{"processor", "events/s", processorLoop},
	}
	for _, l := range loops {
		b.Run("loop="+l.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := topictest.New(b)
				n := seedRaw(b, c)
				group := "bench-" + l.name
				ctx, cancel := context.WithCancel(b.Context())
				done := make(chan struct{})
				b.StartTimer()
				go func() { defer close(done); l.run(ctx, b, c, group) }()
				drained(b, c, group, n)
				b.StopTimer()
				cancel()
				<-done
				c.Broker.Close()
			}
			b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), l.unit)
		})
	}
}

// processorLoop runs the processor on a fresh state until ctx ends.
func processorLoop(ctx context.Context, b *testing.B, c *topictest.Cluster, group string) {
	proc, err := process.New(process.Config{Group: group, TransactionalID: group, StateDir: b.TempDir()},
		process.Deps{Dial: c.Dial, Session: topic.Opts(c.Broker.Addrs()), Layout: c.Layout})
	if err != nil {
		b.Error(err)
		return
	}
	proc.Run(ctx)
}

// copyLoop is the baseline: the same exactly-once session, copying each raw
// record to ogma.deadletter unchanged.
func copyLoop(ctx context.Context, b *testing.B, c *topictest.Cluster, group string) {
	sess, err := kgo.NewGroupTransactSession(append(topic.Opts(c.Broker.Addrs()),
		topic.ProducerOpt(), kgo.TransactionalID(group), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic.Raw),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		b.Error(err)
		return
	}
	defer sess.Close()
	for {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		if err := sess.Begin(); err != nil {
			b.Error(err)
			return
		}
		p := kgo.AbortingFirstErrPromise(sess.Client())
		fs.EachRecord(func(r *kgo.Record) {
			sess.Client().Produce(ctx, &kgo.Record{Topic: topic.Deadletter, Partition: r.Partition, Key: r.Key, Value: r.Value}, p.Promise())
		})
		if _, err := sess.End(ctx, kgo.TransactionEndTry(p.Err() == nil)); err != nil {
			return
		}
	}
}
