package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// benchRows is the raw usage rows of one iteration: 200 settled buckets of
// 100 rows, every row a new fact; 20,200 events with the manifests.
const benchRows = 20000

func seedRaw(b *testing.B, c *topictest.Cluster) {
	c.Produce(b, topictest.UsageRows(c.Layout, "acme", benchRows)...)
}

// runPipeline runs a processor and the sink until ctx ends.
func runPipeline(ctx context.Context, b *testing.B, c *topictest.Cluster, store *clickhouse.Store) <-chan struct{} {
	proc, err := process.New(process.Config{StateDir: b.TempDir()},
		process.Deps{Dial: c.Dial, Session: topic.Opts(c.Broker.Addrs()), Layout: c.Layout})
	if err != nil {
		b.Fatal(err)
	}
	sink, err := clickhouse.NewSink(clickhouse.SinkConfig{}, store, clickhouse.SinkDeps{Dial: c.Dial})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sub := make(chan struct{})
		go func() { defer close(sub); proc.Run(ctx) }()
		sink.Run(ctx)
		<-sub
	}()
	return done
}

func ledgerRows(b *testing.B, cfg clickhouse.Config) uint64 {
	conn := chtest.Conn(b, cfg)
	var n uint64
	if err := conn.QueryRow(b.Context(), "SELECT count() FROM events").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkEndToEnd takes 20k raw usage rows to a queryable ledger — the
// processor and the ClickHouse sink at their defaults, from start until
// ClickHouse holds every event (loop=pipeline) — and the sink alone over
// their 20.2k events (loop=sink), beside a bare clickhouse-go batch insert
// of the same rows (the events and their usage projection; loop=bare), in
// one run. Each iteration has a new database, and the pipeline new input.
func BenchmarkEndToEnd(b *testing.B) {
	// The rows the pipeline writes, made once for the bare insert.
	c := topictest.New(b)
	seedRaw(b, c)
	store, cfg := chtest.NewStore(b)
	ctx, cancel := context.WithCancel(b.Context())
	done := runPipeline(ctx, b, c, store)
	want := uint64(benchRows + benchRows/100)
	for ledgerRows(b, cfg) < want {
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
	cancel()
	<-done
	var recs []*event.Record
	for _, r := range c.Records(b, topic.Events) {
		e, err := event.DecodeRecord(r.Value)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, e)
	}
	rows := rowsOf(recs)

	b.Run("loop=bare", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			_, cfg := chtest.NewStore(b)
			conn := chtest.Conn(b, cfg)
			b.StartTimer()
			bareInsert(b, conn, rows)
			b.StopTimer()
		}
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	groups := 0 // the framework may run a sub-benchmark more than once
	b.Run("loop=sink", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			store, cfg := chtest.NewStore(b)
			groups++
			sink, err := clickhouse.NewSink(clickhouse.SinkConfig{Group: fmt.Sprintf("bench-sink-%d", groups)}, store,
				clickhouse.SinkDeps{Dial: c.Dial})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			done := make(chan struct{})
			b.StartTimer()
			go func() { defer close(done); sink.Run(ctx) }()
			for ledgerRows(b, cfg) < want {
				time.Sleep(20 * time.Millisecond) // polling a condition; more often would load the 2-core ClickHouse it measures
			}
			b.StopTimer()
			cancel()
			<-done
		}
		b.ReportMetric(float64(int(want)*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("loop=pipeline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c := topictest.New(b)
			seedRaw(b, c)
			store, cfg := chtest.NewStore(b)
			ctx, cancel := context.WithCancel(b.Context())
			b.StartTimer()
			done := runPipeline(ctx, b, c, store)
			for ledgerRows(b, cfg) < want {
				time.Sleep(20 * time.Millisecond) // polling a condition; more often would load the 2-core ClickHouse it measures
			}
			b.StopTimer()
			cancel()
			<-done
			c.Broker.Close()
		}
		b.ReportMetric(float64(int(want)*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// bareRows are the rows the sink writes for recs: events, and their usage
// projection.
type bareRows struct{ events, usage [][]any }

func rowsOf(recs []*event.Record) bareRows {
	var rows bareRows
	for _, r := range recs {
		e := r.Event
		observed, _ := time.Parse(time.RFC3339Nano, e.ObservedAt)
		rows.events = append(rows.events, []any{e.Tenant, e.Seq, e.Prev, r.Hash, e.Kind, e.Vendor, e.Stream, string(e.Key), e.Rev,
			observed.UTC(), e.DataDigest, r.Canonical, string(r.Data), r.Salt, r.Source.Partition, r.Source.Offset})
		if e.Kind != event.Fact {
			continue
		}
		var k struct {
			BucketStart time.Time `json:"bucket_start"`
		}
		var u struct {
			Model       string `json:"model"`
			UserID      string `json:"user_id"`
			ProjectID   string `json:"project_id"`
			APIKeyID    string `json:"api_key_id"`
			ServiceTier string `json:"service_tier"`
			Input       int64  `json:"input_tokens"`
			Cached      int64  `json:"input_cached_tokens"`
			Output      int64  `json:"output_tokens"`
			Requests    int64  `json:"num_model_requests"`
		}
		json.Unmarshal(e.Key, &k)
		json.Unmarshal(r.Data, &u)
		rows.usage = append(rows.usage, []any{e.Tenant, e.Vendor, e.Stream, string(e.Key), uint8(1), k.BucketStart.UTC(),
			k.BucketStart.UTC(), u.Model, u.UserID, u.ProjectID, u.APIKeyID, "false", u.ServiceTier,
			u.Input, u.Cached, u.Output, u.Requests, e.Rev, e.Seq})
	}
	return rows
}

// bareInsert writes rows with one prepared batch per table: what the sink
// writes, with nothing around it.
func bareInsert(b *testing.B, conn ch.Conn, rows bareRows) {
	for _, t := range []struct {
		insert string
		rows   [][]any
	}{
		{`INSERT INTO events (tenant, seq, prev, hash, kind, vendor, stream, key, rev,
		observed_at, data_digest, canonical, data, salt, source_partition, source_offset)`, rows.events},
		{`INSERT INTO usage (tenant, vendor, stream, key, primary_set, day, bucket_start, model, user_id,
		project_id, api_key_id, batch, service_tier, input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq)`, rows.usage},
	} {
		batch, err := conn.PrepareBatch(b.Context(), t.insert)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range t.rows {
			if err := batch.Append(r...); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
	}
}
