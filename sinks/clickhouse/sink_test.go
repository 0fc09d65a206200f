package clickhouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event/eventtest"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/price"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// runSink runs a sink of store on c until the returned stop; cfg flushes
// every 50 ms unless set.
func runSink(t *testing.T, c *topictest.Cluster, store *clickhouse.Store, cfg clickhouse.SinkConfig, deps clickhouse.SinkDeps) (stop func()) {
	t.Helper()
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = 50 * time.Millisecond
	}
	deps.Dial = c.Dial
	sink, err := clickhouse.NewSink(cfg, store, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); sink.Run(ctx) }()
	return func() { cancel(); <-done }
}

func count(t *testing.T, cfg clickhouse.Config, tenant string) uint64 {
	t.Helper()
	return countRows(t, cfg, "events", tenant)
}

// countUsage counts tenant's rows in the usage table, every group set.
func countUsage(t *testing.T, cfg clickhouse.Config, tenant string) uint64 {
	t.Helper()
	return countRows(t, cfg, "usage", tenant)
}

func countRows(t *testing.T, cfg clickhouse.Config, table, tenant string) uint64 {
	t.Helper()
	conn := chtest.Conn(t, cfg)
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM "+table+" FINAL WHERE tenant = ?", tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue 3: the sink is idempotent under redelivery, and refuses a tenant
// whose ClickHouse ledger is ahead of Kafka's (a lost broker state must not
// overwrite history), while other tenants go on.
func TestSinkIdempotentAndRefusesDivergedTenant(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	produce := func(recs ...*event.Record) { c.ProduceEvents(t, recs...) }
	var onRefuse func(map[string]string)
	run := func(group string, reg *prometheus.Registry) (stop func()) {
		var r prometheus.Registerer // a nil *Registry must not become a non-nil interface
		if reg != nil {
			r = reg
		}
		return runSink(t, c, store, clickhouse.SinkConfig{Group: group}, clickhouse.SinkDeps{Registerer: r, OnRefuse: onRefuse})
	}

	acme := eventtest.Chain(t, "acme", "a", nil, 3)
	produce(acme...)
	stop := run("sink-1", nil)
	wait.Until(t, "acme's 3 events", func() bool { return count(t, cfg, "acme") == 3 })
	stop()

	// Redelivery: a second group reads everything again; nothing doubles.
	stop = run("sink-2", nil)
	produce(eventtest.Chain(t, "globex", "g", nil, 2)...)
	wait.Until(t, "globex's events", func() bool { return count(t, cfg, "globex") == 2 })
	if n := count(t, cfg, "acme"); n != 3 {
		t.Errorf("after redelivery acme has %d events, want 3", n)
	}
	stop()

	// Kafka lost acme's history and started over with other events: the
	// sink refuses acme rather than write a fork, and goes on with globex.
	reg := prometheus.NewRegistry()
	refusals := make(chan map[string]string, 1)
	onRefuse = func(m map[string]string) { refusals <- m }
	stop = run("sink-3", reg)
	defer stop()
	produce(eventtest.Chain(t, "acme", "other", nil, 4)...)
	produce(eventtest.Chain(t, "globex", "g", nil, 3)...)
	wait.Until(t, "globex's third event", func() bool { return count(t, cfg, "globex") == 3 })
	wait.Until(t, "acme refused", func() bool {
		return testutil.ToFloat64(refusedCounter(reg)) == 1
	})
	if n := count(t, cfg, "acme"); n != 3 {
		t.Errorf("acme has %d ledger rows after the diverged history, want its 3 original", n)
	}
	// It tells the process (its health), with the reason.
	if m := <-refusals; len(m) != 1 || !strings.Contains(m["acme"], "another event at seq") {
		t.Errorf("OnRefuse got %v, want acme and why", m)
	}
	// The refusal is on record, for the API to refuse acme's writes.
	if reason, err := store.Refusal(t.Context(), "acme"); err != nil || !strings.Contains(reason, "another event at seq") {
		t.Errorf("acme's recorded refusal = %q, %v; want why", reason, err)
	}
	if reason, err := store.Refusal(t.Context(), "globex"); err != nil || reason != "" {
		t.Errorf("globex's recorded refusal = %q, %v; want none", reason, err)
	}
}

// A database keeps the id of the installation that writes it: another
// installation's — or, unless adopted, an unclaimed one with a ledger —
// is refused by name.
func TestClaimTellsAnotherInstallationsDatabase(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	if err := store.Claim(t.Context(), "inst-a", false); err != nil {
		t.Fatalf("claiming an empty database: %v", err)
	}
	if err := store.Claim(t.Context(), "inst-a", false); err != nil {
		t.Fatalf("claiming it again: %v", err)
	}
	var other *clickhouse.OtherInstallationError
	if err := store.Claim(t.Context(), "inst-b", true); !errors.As(err, &other) || other.Holder != "inst-a" || other.Database != cfg.Database {
		t.Fatalf("another installation's claim = %v, want an *OtherInstallationError naming inst-a", err)
	}

	// A ledger written before installation ids: only adoption claims it.
	legacy, legacyCfg := chtest.NewStore(t)
	c := topictest.New(t)
	c.ProduceEvents(t, eventtest.Chain(t, "acme", "a", nil, 2)...)
	stop := runSink(t, c, legacy, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})
	wait.Until(t, "acme's events", func() bool { return count(t, legacyCfg, "acme") == 2 })
	stop()
	if err := legacy.Claim(t.Context(), "inst-c", false); !errors.As(err, &other) || other.Holder != "" {
		t.Fatalf("claiming a ledger without an id = %v, want an *OtherInstallationError", err)
	}
	if err := legacy.Claim(t.Context(), "inst-c", true); err != nil {
		t.Fatalf("adopting it: %v", err)
	}
}

func refusedCounter(reg *prometheus.Registry) prometheus.Collector {
	mfs, _ := reg.Gather()
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "ogma_sink_clickhouse_tenants_refused_total" {
			v = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
}

// counterValue returns the value of the counter name in reg, 0 if absent.
func counterValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// DESIGN "The embedded broker": a consumer of ogma.events checks each
// tenant's continuity. A gap in acme's chain is read again, then acme is
// refused loudly with nothing past the gap in the ledger, while globex
// goes on.
func TestSinkRefusesAChainWithAGap(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	acme, globex := eventtest.Chain(t, "acme", "a", nil, 5), eventtest.Chain(t, "globex", "g", nil, 2)
	c.ProduceEvents(t, append(append(acme[:2:2], acme[3:]...), globex...)...) // acme's seq 3 is missing

	reg := prometheus.NewRegistry()
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{Registerer: reg})()

	wait.Until(t, "acme refused", func() bool { return counterValue(reg, "ogma_sink_clickhouse_tenants_refused_total") == 1 })
	wait.Until(t, "globex's events", func() bool { return count(t, cfg, "globex") == 2 })
	if n := counterValue(reg, "ogma_sink_clickhouse_chain_gaps_total"); n != 3 {
		t.Errorf("gaps counted = %v, want 3 reads of the gap before the refusal", n)
	}
	if n := count(t, cfg, "acme"); n != 2 {
		t.Errorf("acme has %d ledger rows, want the 2 before its gap", n)
	}
}

// Usage read before the vendor's api_key_id floor comes as a group set of
// its own (without api_key_id), beside the primary one: the same tokens
// twice. Only the primary group set enters totals. The day is fixed, so
// the test holds whatever today is.
func TestPreFloorGroupSetNeverEntersTotals(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	day := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC) // before the floor, 2025-12-06
	primary := stream.Must(stream.OpenAI, "usage.completions").GroupSet
	preFloor := slices.DeleteFunc(slices.Clone(primary), func(d string) bool { return d == "api_key_id" })
	bucket := &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 1}
	spec := stream.Must(stream.OpenAI, "usage.completions")
	data := `{"api_key_id":"key_1","batch":false,"input_tokens":100,"model":"m","num_model_requests":1,"output_tokens":10,"project_id":"p","service_tier":"default","user_id":"u"}`
	recs := chainFacts(t, "acme", bucket, fact{spec: spec, groupSet: preFloor, data: data}, fact{spec: spec, data: data})
	c.ProduceEvents(t, recs...)
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	// The ledger and its projections are written at once: wait for both
	// facts in the usage table itself.
	wait.Until(t, "both facts in the usage table", func() bool { return countUsage(t, cfg, "acme") == 2 })

	rows, err := store.Usage(t.Context(), clickhouse.UsageQuery{Tenant: "acme", Start: day, End: day.Add(24 * time.Hour), GroupBy: []string{"model"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].InputTokens != 100 || rows[0].OutputTokens != 10 {
		t.Errorf("usage = %+v, want the 100 input tokens once", rows)
	}
}

// Issue 13: every usage row carries its list-price estimate and the price
// table's version; a model the table does not price makes the group
// unpriced — its estimate a lower bound — never a zero cost.
func TestUsageCarriesListPriceEstimates(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	spec := stream.Must(stream.Anthropic, "usage.messages")
	bucket := &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 2}
	rows := []string{
		`{"uncached_input_tokens":1500,"cache_creation":{"ephemeral_1h_input_tokens":1000,"ephemeral_5m_input_tokens":500},` +
			`"cache_read_input_tokens":200,"output_tokens":500,"api_key_id":"apikey_1","workspace_id":null,"model":"claude-opus-4-6",` +
			`"service_tier":"standard","context_window":"0-200k"}`,
		`{"uncached_input_tokens":100,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},` +
			`"cache_read_input_tokens":0,"output_tokens":10,"api_key_id":"apikey_2","workspace_id":null,"model":"claude-unreleased-9",` +
			`"service_tier":"standard","context_window":"0-200k"}`,
	}
	recs := chainFacts(t, "acme", bucket, fact{spec: spec, data: rows[0]}, fact{spec: spec, data: rows[1]})
	c.ProduceEvents(t, recs...)
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	wait.Until(t, "both facts in the usage table", func() bool { return countUsage(t, cfg, "acme") == 2 })

	q := clickhouse.UsageQuery{Tenant: "acme", Start: day, End: day.Add(24 * time.Hour), GroupBy: []string{"model"}}
	got, err := store.Usage(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	version := price.Default().Version
	byModel := map[string]clickhouse.UsageRow{}
	for _, r := range got {
		byModel[r.Dims.Get("model")] = r
	}
	// vendor-apis.md §2.4's row: 1500·5 + 500·6.25 + 1000·10 + 200·0.5 + 500·25 per 1M.
	if r := byModel["claude-opus-4-6"]; r.EstimatedUSD.String() != "0.033225" || r.Unpriced || r.PriceVersion != version ||
		r.InputTokens != 3200 || r.InputCacheWrite5m != 500 || r.InputCacheWrite1h != 1000 {
		t.Errorf("claude-opus-4-6 = %+v, want $0.033225 priced by %s, 3,200 input with 500 + 1,000 cache writes", r, version)
	}
	if r := byModel["claude-unreleased-9"]; !r.Unpriced || !r.EstimatedUSD.IsZero() {
		t.Errorf("an unpriced model = %+v, want unpriced", r)
	}
	q.GroupBy = nil
	all, err := store.Usage(t.Context(), q)
	if err != nil || len(all) != 1 || !all[0].Unpriced || all[0].EstimatedUSD.String() != "0.033225" {
		t.Errorf("the total = %+v, %v: want the priced part as a lower bound, flagged unpriced", all, err)
	}
}

// Issue 13: billed cost is the vendors' own, exact — OpenAI's dollars,
// Anthropic's cents as dollars — grouped as asked, and a group holding a
// restated row (a revision past the first) says so.
func TestCostsAreExactAndFlagRestatements(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bucket := &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 1}
	openAI, anthropic := stream.Must(stream.OpenAI, "costs"), stream.Must(stream.Anthropic, "costs")
	recs := chainFacts(t, "acme", bucket,
		fact{spec: openAI, data: `{"object":"organization.costs.result","amount":{"value":0.1234567891,"currency":"usd"},"line_item":"gpt-6-sol, input","project_id":"proj_1"}`},
		fact{spec: anthropic, data: `{"amount":"41280.000000","currency":"USD","description":"Claude Opus 4.6 Usage - Input Tokens","workspace_id":null}`},
		fact{spec: anthropic, rev: 1, data: `{"amount":"41281.000000","currency":"USD","description":"Claude Opus 4.6 Usage - Input Tokens","workspace_id":null}`})
	c.ProduceEvents(t, recs...)
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	wait.Until(t, "every event in the ledger", func() bool { return count(t, cfg, "acme") == 3 })

	q := clickhouse.CostQuery{Tenant: "acme", Start: day, End: day.Add(24 * time.Hour), GroupBy: []string{"vendor", "day"}}
	var got []clickhouse.CostRow
	wait.Until(t, "both vendors' costs", func() bool {
		var err error
		got, err = store.Costs(t.Context(), q)
		return err == nil && len(got) == 2
	})
	want := map[string]struct {
		amount   string
		restated bool
	}{stream.Anthropic: {"412.81", true}, stream.OpenAI: {"0.1234567891", false}}
	for _, r := range got {
		w := want[r.Dims.Get("vendor")]
		if r.Amount.String() != w.amount || r.Restated != w.restated || r.Currency != "usd" || r.Dims.Get("day") != "2026-11-20" {
			t.Errorf("%s = %+v, want %s usd on 2026-11-20, restated %v", r.Dims.Get("vendor"), r, w.amount, w.restated)
		}
	}
}

// How complete a tenant's reports are comes from the manifests the sink
// writes: settled through the day after the latest bucket of the stream
// furthest behind; each stream's coverage counts its buckets once, however
// often a manifest is restated or redelivered; another tenant's are not
// the tenant's.
func TestCompletenessIsReadFromManifests(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	completions, embeddings := stream.Must(stream.OpenAI, "usage.completions"), stream.Must(stream.OpenAI, "usage.embeddings")
	day := func(d int) *envelope.Bucket { return dayBucket(time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC)) }
	type m = settledBucket
	acme := manifestEvents(t, "acme", m{completions, day(1)}, m{completions, day(2)}, m{completions, day(3)}, m{completions, day(3)},
		m{embeddings, day(1)}, m{embeddings, day(2)})
	c.ProduceEvents(t, append(acme, manifestEvents(t, "globex", m{completions, day(9)}, m{embeddings, day(9)})...)...)
	c.ProduceEvents(t, acme[2]) // redelivered
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	wait.Until(t, "every event in the ledger", func() bool { return count(t, cfg, "acme") == 6 && count(t, cfg, "globex") == 2 })

	through, ok, err := store.CompleteThrough(t.Context(), "acme", stream.OpenAI, stream.UsageReport)
	if want := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC); err != nil || !ok || !through.Equal(want) {
		t.Errorf("complete through %v (%v, %v), want %v: embeddings are settled through 2026-11-02", through, ok, err, want)
	}
	// A usage answer and the unmapped panel say as much, read with their rows.
	q := clickhouse.UsageQuery{Tenant: "acme", Vendor: stream.OpenAI, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		End: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)}
	_, usageThrough, usageOK, err := store.UsageThrough(t.Context(), q)
	if err != nil || usageOK != ok || !usageThrough.Equal(through) {
		t.Errorf("usage complete through %v (%v, %v), want %v", usageThrough, usageOK, err, through)
	}
	_, unmappedThrough, unmappedOK, err := store.UnmappedKeys(t.Context(), q)
	if err != nil || unmappedOK != ok || !unmappedThrough.Equal(through) {
		t.Errorf("unmapped complete through %v (%v, %v), want %v", unmappedThrough, unmappedOK, err, through)
	}
	if _, ok, err := store.CompleteThrough(t.Context(), "acme", stream.OpenAI, stream.CostReport); err != nil || ok {
		t.Errorf("costs complete: %v, %v; want none settled", ok, err)
	}
	cov, err := store.Coverage(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []clickhouse.Coverage{
		{Vendor: "openai", Stream: "usage.completions", Buckets: 3, First: "2026-11-01T00:00:00Z", Last: "2026-11-03T00:00:00Z"},
		{Vendor: "openai", Stream: "usage.embeddings", Buckets: 2, First: "2026-11-01T00:00:00Z", Last: "2026-11-02T00:00:00Z"},
	}
	if !slices.Equal(cov, want) {
		t.Errorf("coverage\n got %+v\nwant %+v", cov, want)
	}
}

// A read's open buckets are each bucket's latest version as fetched —
// not one settled since, by a later version saying so or by its manifest
// (its facts are counted instead) — of the vendors asked about.
func TestOpenBucketsAreTheirLatestVersionUntilSettled(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	c := topictest.New(t)
	spec := stream.Must(stream.OpenAI, "usage.completions")
	day := func(d int) *envelope.Bucket { return dayBucket(time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC)) }
	fetched := func(b *envelope.Bucket, input int) *kgo.Record {
		v, err := json.Marshal(envelope.Provisional{Tenant: "acme", Vendor: spec.Vendor, Stream: spec.Name, Bucket: *b, GroupSet: spec.GroupSet,
			FetchedAt: time.Unix(b.Start, 0), Rows: []json.RawMessage{json.RawMessage(fmt.Sprintf(
				`{"api_key_id":"key_1","batch":false,"input_tokens":%d,"model":"m","num_model_requests":1,"output_tokens":10,"project_id":"p","service_tier":"default","user_id":"u"}`, input))}})
		if err != nil {
			t.Fatal(err)
		}
		return c.Layout.Record(topic.Provisional, "acme", envelope.ProvisionalKey(stream.ID{Tenant: "acme", Vendor: spec.Vendor, Stream: spec.Name}, b.Start), v)
	}
	settled := func(b *envelope.Bucket) *kgo.Record {
		return c.Layout.Record(topic.Provisional, "acme", envelope.ProvisionalKey(stream.ID{Tenant: "acme", Vendor: spec.Vendor, Stream: spec.Name}, b.Start), nil)
	}
	c.Produce(t,
		fetched(day(1), 100), // settled by its manifest, its marker lost
		fetched(day(2), 100), fetched(day(2), 150), settled(day(2)),
		fetched(day(3), 200), fetched(day(4), 300), fetched(day(3), 250))
	c.ProduceEvents(t, manifestEvents(t, "acme", settledBucket{spec, day(1)}, settledBucket{spec, day(2)})...)
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	conn := chtest.Conn(t, cfg)
	wait.Until(t, "every version in ClickHouse", func() bool {
		var versions uint64
		err := conn.QueryRow(t.Context(), "SELECT uniqExact(version) FROM provisional_versions WHERE tenant = 'acme'").Scan(&versions)
		return err == nil && versions == 7
	})
	wait.Until(t, "both manifests", func() bool { return count(t, cfg, "acme") == 2 })

	for _, vendor := range []string{"", stream.OpenAI, stream.Anthropic} {
		rows, err := store.Usage(t.Context(), clickhouse.UsageQuery{Tenant: "acme", Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			End: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), GroupBy: []string{"day"}, Vendor: vendor})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, r := range rows {
			if r.Provisional {
				got[r.Dims.Get("day")] = r.InputTokens
			}
		}
		want := map[string]int64{"2026-11-03": 250, "2026-11-04": 300}
		if vendor == stream.Anthropic {
			want = map[string]int64{}
		}
		if !maps.Equal(got, want) {
			t.Errorf("vendor %q: open buckets %v, want %v", vendor, got, want)
		}
	}
}

// settledBucket is a bucket of a report stream that a manifest settles.
type settledBucket struct {
	spec   stream.Spec
	bucket *envelope.Bucket
}

// manifestEvents returns tenant's chain from seq 1 of a manifest of each.
func manifestEvents(t *testing.T, tenant string, each ...settledBucket) []*event.Record {
	t.Helper()
	prev := event.Genesis
	var recs []*event.Record
	for i, m := range each {
		key, err := normalize.ManifestKey(m.spec, m.bucket, m.spec.GroupSet)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := event.SealCanonicalKey(event.Event{Tenant: tenant, Seq: uint64(i + 1), Prev: prev, Kind: event.Manifest, Vendor: m.spec.Vendor,
			Stream: m.spec.Name, Key: key, ObservedAt: "2026-11-23T12:00:00Z"}, []byte(`{"rows":1}`), strings.Repeat("0a", 32), event.Source{Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		prev = rec.Hash
		recs = append(recs, rec)
	}
	return recs
}

// dayBucket is the daily bucket starting at start.
func dayBucket(start time.Time) *envelope.Bucket {
	return &envelope.Bucket{Start: start.Unix(), End: start.AddDate(0, 0, 1).Unix(), Width: "1d"}
}

// fact is one report row to chain in a test.
type fact struct {
	spec     stream.Spec
	groupSet []string // nil: the spec's primary group set
	data     string
	rev      uint32
}

// chainFacts returns facts as tenant's chain from seq 1, each keyed as the
// processor keys it, all in bucket.
func chainFacts(t *testing.T, tenant string, bucket *envelope.Bucket, facts ...fact) []*event.Record {
	t.Helper()
	prev := event.Genesis
	var recs []*event.Record
	for i, f := range facts {
		set := f.groupSet
		if set == nil {
			set = f.spec.GroupSet
		}
		var row map[string]any
		json.Unmarshal([]byte(f.data), &row)
		key, err := normalize.ReportKey(f.spec, bucket, set, row)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := event.SealCanonicalKey(event.Event{Tenant: tenant, Seq: uint64(i + 1), Prev: prev, Kind: event.Fact, Vendor: f.spec.Vendor,
			Stream: f.spec.Name, Key: key, Rev: f.rev, ObservedAt: "2026-11-23T12:00:00Z"}, []byte(f.data), strings.Repeat("0a", 32), event.Source{Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		prev = rec.Hash
		recs = append(recs, rec)
	}
	return recs
}
