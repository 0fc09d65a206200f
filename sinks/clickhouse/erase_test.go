package clickhouse_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// Issue 13: offboarding erases a tenant's data — every event's data and
// salt, every projection row — while its chain still verifies, and leaves
// other tenants as they were.
func TestEraseTenantKeepsTheChainVerifiable(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bucket := &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 1}
	spec := stream.Must(stream.OpenAI, "usage.completions")
	data := `{"api_key_id":"key_1","batch":false,"input_tokens":100,"model":"gpt-4o","num_model_requests":1,"output_tokens":10,"project_id":"p","service_tier":"default","user_id":"u"}`
	for _, tenant := range []string{"acme", "globex"} {
		c.ProduceEvents(t, chainFacts(t, tenant, bucket, fact{spec: spec, data: data}, fact{spec: spec, data: data, rev: 1})...)
	}
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	wait.Until(t, "both tenants projected", func() bool { return countUsage(t, cfg, "acme") == 1 && countUsage(t, cfg, "globex") == 1 })

	if err := store.EraseTenant(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if n := countUsage(t, cfg, "acme"); n != 0 {
		t.Errorf("acme keeps %d usage rows", n)
	}
	if n := countUsage(t, cfg, "globex"); n != 1 {
		t.Errorf("globex has %d usage rows, want its 1", n)
	}
	verify := func(tenant string) *rekor.Report {
		t.Helper()
		var b bytes.Buffer
		if err := store.WriteBundle(t.Context(), &b, anchor.BundleHeader{Tenant: tenant, FromSeq: 1, Data: true}, false); err != nil {
			t.Fatal(err)
		}
		rep, err := rekor.VerifyBundle(t.Context(), &b, rekor.TrustRoots{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify("acme"); rep.Failure != nil || rep.Events != 2 || rep.Erased != 2 {
		t.Errorf("acme's chain after erasure: %+v, want 2 events, both erased, verified", rep)
	}
	if rep := verify("globex"); rep.Failure != nil || rep.Events != 2 || rep.Erased != 0 {
		t.Errorf("globex's chain: %+v, want 2 events with their data, verified", rep)
	}

	// Kafka's copy: acme's data key destroyed, a ledger rebuilt from
	// ogma.events holds acme's chain without its data.
	if err := datakey.Erase(t.Context(), c.Dial, c.Layout, "acme", time.Now()); err != nil {
		t.Fatal(err)
	}
	rebuilt, rcfg := chtest.NewStore(t)
	defer runSink(t, c, rebuilt, clickhouse.SinkConfig{Group: "rebuild"}, clickhouse.SinkDeps{})()
	wait.Until(t, "the rebuilt ledger", func() bool { return countUsage(t, rcfg, "globex") == 1 })
	store = rebuilt
	if rep := verify("acme"); rep.Failure != nil || rep.Events != 2 || rep.Erased != 2 {
		t.Errorf("acme's chain rebuilt from Kafka after erasure: %+v, want 2 events, both erased, verified", rep)
	}
	if rep := verify("globex"); rep.Failure != nil || rep.Events != 2 || rep.Erased != 0 {
		t.Errorf("globex's chain rebuilt from Kafka: %+v, want 2 events with their data, verified", rep)
	}
}
