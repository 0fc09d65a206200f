package main

import (
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// BenchmarkBackfillToQueryable runs `ogma dev` on a simulated organization
// of 1,000 users and times its 90-day backfill from connect to queryable:
// every stream has finished its first poll, the processor has committed
// every raw record and the ClickHouse sink every event, so every settled
// bucket is in the ledger. It reports the seconds and the events per second.
func BenchmarkBackfillToQueryable(b *testing.B) {
	var events float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := chtest.NewDB(b).Database
		dir := b.TempDir()
		b.StartTimer()
		d, err := startDev(b, dir, db, "--sim-users", "1000", "--log-level", "info")
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Minute)
		polled := func() bool {
			for _, spec := range stream.Of(stream.OpenAI) {
				s := spec.Name
				if d.metric(b, "ogma_connector_polls_total", "stream", s) < 1 {
					return false
				}
			}
			return true
		}
		dial := topic.Seeds([]string{d.kafka})
		drained := func(group, name string) bool {
			ok, _ := topictest.DrainedTopic(b.Context(), dial, group, name, 1)
			return ok
		}
		for !polled() || !drained("ogma-process", topic.Raw) || !drained("ogma-sink-clickhouse", topic.Events) {
			if time.Now().After(deadline) {
				b.Fatal("the backfill did not become queryable within 10 minutes")
			}
			time.Sleep(50 * time.Millisecond) // polling a condition under a deadline
		}
		b.StopTimer()
		events += float64(ledgerCount(b, db))
		d.stop(b)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/backfill")
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
}
