package process_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// benchRows is the number of raw usage rows each benchmark iteration reads.
const benchRows = 20000

// seedRaw fills ogma.raw with benchRows usage rows of one tenant.
func seedRaw(b testing.TB, c *topictest.Cluster) int {
	c.Produce(b, topictest.UsageRows(c.Layout, "acme", benchRows)...)
	return benchRows
}

// drained waits until group has committed every raw record.
func drained(b testing.TB, c *topictest.Cluster, group string, n int) {
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
				runtime.GC() // the setup's garbage is not the loop's to collect
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
