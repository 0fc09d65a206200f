package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// rawBucket returns the raw records of one settled usage bucket of tenant
// with n rows, as a connector publishes them.
func rawBucket(l topic.Layout, tenant string, day int, n int) []*kgo.Record {
	start := time.Date(2026, 10, 1+day, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range n {
		r := &envelope.Raw{V: 1, Tenant: tenant, Vendor: "openai", Stream: "usage.completions",
			FetchedAt: start.Add(72 * time.Hour), Salt: strings.Repeat("cd", 32), GroupSet: []string{"model"},
			Bucket: &envelope.Bucket{Start: start.Unix(), End: start.Add(24 * time.Hour).Unix(), Width: "1d", Rows: n, Row: i},
			Data:   json.RawMessage(fmt.Sprintf(`{"model":"m%d","input_tokens":%d}`, i, day))}
		recs = append(recs, l.Record(topic.Raw, tenant, []byte(r.Key()), r.Marshal()))
	}
	return recs
}

// processAll runs a processor with cfg until it has committed every raw
// record, then stops it; onBucketWait is its Deps.OnBucketWait.
func processAll(t *testing.T, c *topictest.Cluster, cfg process.Config, onBucketWait func()) {
	t.Helper()
	processAllWith(t, c, cfg, process.Deps{OnBucketWait: onBucketWait})
}

// processAllWith is processAll with deps, whose broker and layout it sets.
func processAllWith(t *testing.T, c *topictest.Cluster, cfg process.Config, deps process.Deps) {
	t.Helper()
	deps.Dial, deps.Session, deps.Layout = c.Dial, topic.Opts(c.Broker.Addrs()), c.Layout
	proc, err := process.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	topictest.WaitDrained(t, c.Dial, "ogma-process", 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("processor: %v", err)
	}
}

// counts returns how often each record key occurs in topic.
func counts(t *testing.T, c *topictest.Cluster, name string) map[string]int {
	m := map[string]int{}
	for _, r := range c.Records(t, name) {
		m[string(r.Key)]++
	}
	return m
}

// M2 of shared/notes/kfake-crash-durability.md: a broker crash can keep a
// transaction's records and lose the offsets it committed, so the group
// reads again what it already turned into events and deadletters. Even with
// its local state gone too, the processor makes no second copy of either.
func TestOffsetsLostAfterCommitRepeatNothing(t *testing.T) {
	c := topictest.New(t)
	l := c.Layout
	hostile := l.Record(topic.Raw, "acme", []byte("x"), []byte("not an envelope"))
	c.Produce(t, rawBucket(l, "acme", 0, 3)...)
	c.Produce(t, append(rawBucket(l, "globex", 0, 2), rawBucket(l, "acme", 1, 2)...)...)
	// The deadletter is the partition's last output: no event's source
	// offset covers it.
	c.Produce(t, hostile)
	firstDir := t.TempDir()
	processAll(t, c, process.Config{StateDir: firstDir}, nil)
	events, dead := counts(t, c, topic.Events), counts(t, c, topic.Deadletter)
	if len(events) != 3+1+2+1+2+1 || len(dead) != 1 {
		t.Fatalf("first run: %d events, %d deadletters; want 10 and 1", len(events), len(dead))
	}

	for _, stateDir := range []string{"the same state", "a fresh state"} {
		// The offsets go back to the start, as if never committed.
		cl, err := c.Dial()
		if err != nil {
			t.Fatal(err)
		}
		var rewind kadm.Offsets
		for _, p := range topic.Partitions(l.Partitions) {
			rewind.Add(kadm.Offset{Topic: topic.Raw, Partition: p, At: 0, LeaderEpoch: -1})
		}
		if _, err := kadm.NewClient(cl).CommitOffsets(t.Context(), "ogma-process", rewind); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		dir := t.TempDir()
		if stateDir == "the same state" {
			dir = firstDir
		}
		processAll(t, c, process.Config{StateDir: dir}, nil)
		for name, want := range map[string]map[string]int{topic.Events: events, topic.Deadletter: dead} {
			for k, n := range counts(t, c, name) {
				if n != 1 || want[k] != 1 {
					t.Errorf("after reading again with %s: %s holds %q %d times (first run: %d)", stateDir, name, k, n, want[k])
				}
			}
		}
	}
}

// DESIGN "The embedded broker": a consumer of ogma.events checks each
// tenant's continuity. A restore that meets a seq gap reads again, then
// refuses with the tenant and offset, instead of building state over the
// hole (its next event would fork the chain).
func TestRestoreRefusesAChainWithAGap(t *testing.T) {
	c := topictest.New(t)
	l := c.Layout
	prev := event.Genesis
	var recs []*kgo.Record
	for _, seq := range []uint64{1, 2, 4} {
		rec, err := event.Seal(event.Event{Tenant: "acme", Seq: seq, Prev: prev, Kind: event.Fact, Vendor: "openai",
			Stream: "audit_logs", Key: json.RawMessage(fmt.Sprintf(`{"id":"a%d"}`, seq)), ObservedAt: "2026-11-01T00:00:00Z"},
			json.RawMessage(`{}`), strings.Repeat("ab", 32), event.Source{Partition: l.Partition("acme"), Offset: int64(seq)})
		if err != nil {
			t.Fatal(err)
		}
		prev = rec.Hash
		recs = append(recs, l.Record(topic.Events, "acme", []byte(fmt.Sprintf("acme/%d", seq)), rec.Marshal()))
	}
	c.Produce(t, recs...)
	c.Produce(t, rawBucket(l, "acme", 0, 1)...)

	proc, err := process.New(process.Config{StateDir: t.TempDir()},
		process.Deps{Dial: c.Dial, Session: topic.Opts(c.Broker.Addrs()), Layout: l})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = proc.Run(ctx)
	var gap *process.GapError
	if !errors.As(err, &gap) || gap.Tenant != "acme" || gap.Seq != 4 || gap.Head.Seq != 2 {
		t.Fatalf("Run = %v, want a gap of acme after seq 2", err)
	}
	if got := counts(t, c, topic.Events); len(got) != 3 {
		t.Errorf("ogma.events holds %d events after the refusal, want the 3 it had", len(got))
	}
}

// A batch that ends inside a bucket waits for the bucket's other rows; a
// poll meanwhile that brings only another partition's records does not end
// the wait, and the bucket completes whole, with no deadletter.
func TestBucketWaitOutlastsOtherPartitionsRecords(t *testing.T) {
	c := topictest.New(t)
	l := c.Layout
	other := "globex"
	for l.Partition(other) == l.Partition("acme") {
		other += "x"
	}
	acme := rawBucket(l, "acme", 0, 3)
	c.Produce(t, acme[:2]...)
	waits := 0
	processAll(t, c, process.Config{StateDir: t.TempDir(), BucketWait: 10 * time.Second}, func() {
		// First another partition's bucket arrives, then acme's last row.
		switch waits++; waits {
		case 1:
			c.Produce(t, rawBucket(l, other, 0, 1)...)
		case 2:
			c.Produce(t, acme[2])
		}
	})
	if dead := counts(t, c, topic.Deadletter); len(dead) != 0 {
		t.Errorf("deadletters %v, want none", dead)
	}
	if events := counts(t, c, topic.Events); len(events) != 3+1+1+1 {
		t.Errorf("%d events, want acme's 3 rows and manifest, %s's row and manifest", len(events), other)
	}
}

// A connector that keeps producing keeps ending polls inside new buckets;
// a batch that took each poll's records would stay open until the broker
// aborted it. Past a quarter of the transaction timeout, a batch reads only
// the rows its open bucket misses and commits when the bucket is whole.
func TestBatchPastItsBudgetEndsWithItsBucket(t *testing.T) {
	c := topictest.New(t)
	const buckets = 20
	var all [][]*kgo.Record
	for day := range buckets {
		all = append(all, rawBucket(c.Layout, "acme", day, 3))
	}
	c.Produce(t, all[0][:2]...)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	waits, commits := 0, 0
	cfg := process.Config{StateDir: t.TempDir(), BucketWait: 10 * time.Second, TransactionTimeout: time.Minute}
	processAllWith(t, c, cfg, process.Deps{
		Now:      func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		OnCommit: func() { mu.Lock(); defer mu.Unlock(); commits++ },
		OnBucketWait: func() {
			// The batch's time passes; the connector publishes the end of
			// this bucket with the start of the next, as a truncated fetch
			// would show them.
			mu.Lock()
			now = now.Add(cfg.TransactionTimeout)
			day := waits
			waits++
			mu.Unlock()
			if day >= buckets {
				t.Errorf("bucket wait %d, after every bucket", day)
				return
			}
			recs := []*kgo.Record{all[day][2]}
			if day+1 < buckets {
				recs = append(recs, all[day+1][:2]...)
			}
			c.Produce(t, recs...)
		},
	})
	if dead := counts(t, c, topic.Deadletter); len(dead) != 0 {
		t.Errorf("deadletters %v, want none", dead)
	}
	if events := counts(t, c, topic.Events); len(events) != buckets*(3+1) {
		t.Errorf("%d events, want %d buckets of 3 rows and a manifest", len(events), buckets)
	}
	if commits < buckets {
		t.Errorf("%d transactions for %d buckets: a batch took the next bucket's rows past its budget", commits, buckets)
	}
}

// Ready means able to process: a restarted processor restores every
// partition assigned to it — those with no new raw record too — before it
// says so.
func TestReadyOnlyOnceEveryAssignedPartitionIsRestored(t *testing.T) {
	c := topictest.New(t)
	c.Produce(t, rawBucket(c.Layout, "acme", 0, 3)...)
	processAll(t, c, process.Config{StateDir: t.TempDir()}, nil) // events to restore; no raw record left

	reg := prometheus.NewRegistry()
	proc, stopped := runProcessor(t, c, process.Config{StateDir: t.TempDir()}, reg)
	select {
	case <-proc.Ready():
	case <-stopped:
		t.Fatal("processor stopped before it was ready")
	}
	restored := 0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ogma_processor_restore_duration_seconds" {
			restored = int(mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	if restored != int(c.Layout.Partitions) {
		t.Errorf("ready after restoring %d partitions, want all %d assigned", restored, c.Layout.Partitions)
	}
}

// The lag gauge does not go stale: once the processor has processed every
// raw record it reads 0 within its refresh interval — transaction markers
// are not records — and so does the age of the oldest unprocessed one.
func TestLagFallsToZeroWhenCaughtUp(t *testing.T) {
	c := topictest.New(t)
	// As a connector publishes: a bucket per transaction, each closed by
	// a marker that takes an offset.
	cl, err := c.Dial(topic.ProducerOpt(), kgo.TransactionalID("connector"))
	if err != nil {
		t.Fatal(err)
	}
	for day := range 2 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), rawBucket(c.Layout, "acme", day, 3)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	reg := prometheus.NewRegistry()
	runProcessor(t, c, process.Config{StateDir: t.TempDir(), LagInterval: 20 * time.Millisecond}, reg)
	topictest.WaitDrained(t, c.Dial, "ogma-process", 1)

	part := strconv.Itoa(int(c.Layout.Partition("acme")))
	wait.Until(t, "lag 0 on acme's partition", func() bool {
		return gauge(t, reg, "ogma_processor_lag_records", part) == 0 && gauge(t, reg, "ogma_processor_oldest_unprocessed_seconds", "") == 0
	})
}

// gauge returns the value of a gauge in reg, of its partition label when
// given; -1 when absent.
func gauge(t *testing.T, reg *prometheus.Registry, name, partition string) float64 {
	t.Helper()
	m := metric(t, reg, name, func(m *dto.Metric) bool {
		return partition == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == partition
	})
	if m == nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// runProcessor runs a processor with cfg on c, its metrics in reg, until
// the test ends; stopped is closed if it stops before.
func runProcessor(t *testing.T, c *topictest.Cluster, cfg process.Config, reg prometheus.Registerer) (_ *process.Processor, stopped <-chan struct{}) {
	t.Helper()
	proc, err := process.New(cfg, process.Deps{Dial: c.Dial, Session: topic.Opts(c.Broker.Addrs()), Layout: c.Layout, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := proc.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("processor: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return proc, done
}

// Kafka refusing one record's output (here: larger than the producer's
// batch limit) aborts the transaction once; read again, that raw record is
// deadlettered and every other tenant's records go through, instead of
// the batch aborting forever.
func TestOutputKafkaRefusesIsDeadletteredNotRetriedForever(t *testing.T) {
	c := topictest.New(t)
	poison := rawBucket(c.Layout, "acme", 0, 1)[0]
	r, _ := envelope.Decode(poison.Value)
	r.Data = json.RawMessage(`{"model":"m","input_tokens":1,"note":"` + strings.Repeat("x", 100<<10) + `"}`)
	poison.Value = r.Marshal()
	c.Produce(t, poison)
	c.Produce(t, rawBucket(c.Layout, "globex", 0, 2)...)

	reg := prometheus.NewRegistry()
	proc, err := process.New(process.Config{StateDir: t.TempDir()}, process.Deps{Dial: c.Dial, Registerer: reg, Layout: c.Layout,
		Session: append(topic.Opts(c.Broker.Addrs()), kgo.ProducerBatchMaxBytes(64<<10))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	topictest.WaitDrained(t, c.Dial, "ogma-process", 1)

	dead := c.Records(t, topic.Deadletter)
	if len(dead) != 1 || !strings.Contains(string(dead[0].Value), "Kafka refused its output") {
		t.Fatalf("deadletters = %d, want the refused record's, saying so", len(dead))
	}
	// globex's 2 rows and manifest; acme's manifest, of a bucket whose
	// only row is deadlettered.
	if n := counts(t, c, topic.Events); len(n) != 4 || n["globex/3"] != 1 || n["acme/1"] != 1 {
		t.Errorf("events = %v, want globex's three and acme's manifest", n)
	}
	if v := gauge(t, reg, "ogma_processor_aborts_in_a_row", ""); v != 0 {
		t.Errorf("aborts in a row after the commit = %v, want 0", v)
	}
}
