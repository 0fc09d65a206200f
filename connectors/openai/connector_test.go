package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

var simNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for the connector.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	kr      *seal.Keyring
	sim     *openaisim.Server
	cluster *topictest.Cluster
	clock   *clock
	reg     *prometheus.Registry
	conn    *poll.Connector
	errc    chan error
}

func allStreams(c *openai.Client) []poll.Scheduled {
	return openai.Streams(c, 15*time.Minute, time.Hour)
}

// someStreams is the main usage endpoint, costs and the directory lists:
// enough for tests about keys and scopes, and quicker than every stream.
func someStreams(c *openai.Client) []poll.Scheduled {
	var out []poll.Scheduled
	for _, s := range allStreams(c) {
		if n := s.Stream.Name(); n == "usage.completions" || !strings.HasPrefix(n, "usage.") {
			out = append(out, s)
		}
	}
	return out
}

func usageOnly(c *openai.Client) []poll.Scheduled {
	return openai.Streams(c, 15*time.Minute, time.Hour)[:1]
}

// start runs a connector for tenant "acme", connected at simNow with the
// simulator's key of the given kind, against a fresh broker.
func start(t *testing.T, keyKind string, cfg poll.Config, streams func(*openai.Client) []poll.Scheduled, opts ...kfake.Opt) *harness {
	t.Helper()
	return startSim(t, openaisim.Config{}, keyKind, cfg, streams, opts...)
}

// startSim is start with a simulator of the given config (seed and clock
// are set here).
func startSim(t *testing.T, simCfg openaisim.Config, keyKind string, cfg poll.Config, streams func(*openai.Client) []poll.Scheduled, opts ...kfake.Opt) *harness {
	t.Helper()
	simCfg.Seed, simCfg.Now = 11, func() time.Time { return simNow }
	h := &harness{
		sim:     openaisim.New(simCfg),
		cluster: topictest.New(t, opts...),
		clock:   &clock{t: simNow},
		reg:     prometheus.NewRegistry(),
		errc:    make(chan error, 1),
	}
	srv := httptest.NewServer(h.sim)
	t.Cleanup(srv.Close)

	kr, _ := sealtest.Keyring(t)
	h.kr = kr
	sealed, err := kr.Seal(seal.NewSecret(h.sim.Key(keyKind)), "acme", openai.Vendor, 1)
	if err != nil {
		t.Fatal(err)
	}
	l := h.cluster.Layout
	err = control.Publish(t.Context(), h.cluster.Dial, kr,
		control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyUS, CreatedAt: simNow}),
		control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: openai.Vendor, Generation: 1,
			Sealed: sealed, SealedAt: simNow, ConnectedAt: simNow, Status: control.StatusOK}))
	if err != nil {
		t.Fatal(err)
	}

	client, err := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Millisecond
	}
	cfg.SessionTimeout = 6 * time.Second
	if cfg.Jitter == 0 {
		cfg.Jitter = -1 // tests step the clock by exact cadences
	}
	h.conn, err = poll.New(cfg, poll.Deps{
		Dial: h.cluster.Dial, Layout: l, Keyring: kr,
		Vendors:    map[string][]poll.Scheduled{openai.Vendor: streams(client)},
		Registerer: h.reg, Now: h.clock.Now, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// t.Context ends before Cleanup runs, and Run with it; anything
		// else it returns is a failure of the test that started it.
		err := h.conn.Run(t.Context())
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("connector: %v", err)
		}
		h.errc <- err
	}()
	t.Cleanup(func() { <-h.errc })
	return h
}

// waitPolls waits until stream has been polled successfully n times.
func (h *harness) waitPolls(t *testing.T, stream string, n float64) {
	t.Helper()
	wait.Until(t, fmt.Sprintf("%v ok polls of %s", n, stream), func() bool {
		return testutil.ToFloat64(pollsOK(h.reg, stream)) >= n
	})
}

func pollsOK(reg *prometheus.Registry, stream string) prometheus.Collector {
	return collectorFunc(func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "ogma_connector_polls_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["stream"] == stream && labels["result"] == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	})
}

type collectorFunc func() float64

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("x", "x", nil, nil)
}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.GaugeValue, f())
}

func rawOf(t *testing.T, recs []*kgo.Record, stream string) []*envelope.Raw {
	t.Helper()
	var out []*envelope.Raw
	for _, r := range recs {
		raw, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatalf("raw record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != raw.Key() {
			t.Errorf("record key %q, want the envelope's identity %q", r.Key, raw.Key())
		}
		if raw.Stream == stream {
			out = append(out, raw)
		}
	}
	return out
}

// byBucket groups usage rows by bucket start.
func byBucket(t *testing.T, raws []*envelope.Raw) map[int64][]openaisim.CompletionsResult {
	t.Helper()
	out := map[int64][]openaisim.CompletionsResult{}
	for _, r := range raws {
		if r.Bucket == nil {
			t.Fatalf("usage record without bucket: %s", r.Key())
		}
		if _, ok := out[r.Bucket.Start]; !ok {
			out[r.Bucket.Start] = []openaisim.CompletionsResult{}
		}
		if r.Data == nil {
			if r.Bucket.Rows != 0 {
				t.Errorf("bucket %d: record without data in a bucket of %d rows", r.Bucket.Start, r.Bucket.Rows)
			}
			continue
		}
		var res openaisim.CompletionsResult
		if err := json.Unmarshal(r.Data, &res); err != nil {
			t.Fatal(err)
		}
		out[r.Bucket.Start] = append(out[r.Bucket.Start], res)
	}
	return out
}

// Issue 2: raw records in ogma.raw equal the simulator's own rows for the
// 90-day window, across many pages; a second poll of unchanged data
// publishes nothing; a changed bucket publishes that bucket only.
func TestRawEqualsSimulatorWindow(t *testing.T) {
	h := start(t, openaisim.KeyFull, poll.Config{}, allStreams)
	h.waitPolls(t, "usage.completions", 1)
	for _, s := range stream.Of(stream.OpenAI) {
		h.waitPolls(t, s.Name, 1)
	}

	recs := h.cluster.Records(t, topic.Raw)
	for _, r := range recs {
		if r.Partition != topic.Partition("acme", h.cluster.Layout.Partitions) {
			t.Fatalf("raw record on partition %d, want the tenant's %d", r.Partition, topic.Partition("acme", h.cluster.Layout.Partitions))
		}
	}
	usage := rawOf(t, recs, "usage.completions")
	buckets := byBucket(t, usage)
	origin := simNow.Truncate(24*time.Hour).AddDate(0, 0, -90)
	var rows int
	for d := origin; !d.After(simNow); d = d.Add(24 * time.Hour) {
		want := h.sim.Completions(d, openaisim.CompletionsGroupBy)
		got, ok := buckets[d.Unix()]
		if !ok {
			t.Fatalf("bucket %s missing from ogma.raw", d.Format(time.DateOnly))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("bucket %s differs from the simulator (-sim +raw):\n%s", d.Format(time.DateOnly), diff)
		}
		rows += len(want)
		delete(buckets, d.Unix())
	}
	if len(buckets) != 0 {
		t.Errorf("ogma.raw has %d buckets outside the 90-day window", len(buckets))
	}
	if rows < 5000 {
		t.Errorf("only %d usage rows; the window should span many pages", rows)
	}
	var usageRequests int
	for _, r := range h.sim.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("the connector sent %s %s", r.Method, r.Path)
		}
		if r.Path == "/v1/organization/usage/completions" {
			usageRequests++
		}
	}
	if usageRequests < 3 {
		t.Errorf("usage read in %d requests, want several pages", usageRequests)
	}

	// Costs: every bucket of the window equals the simulator's.
	costs := map[int64][]openaisim.CostsResult{}
	for _, r := range rawOf(t, recs, "costs") {
		if _, ok := costs[r.Bucket.Start]; !ok {
			costs[r.Bucket.Start] = []openaisim.CostsResult{}
		}
		if r.Data != nil {
			var c openaisim.CostsResult
			json.Unmarshal(r.Data, &c)
			costs[r.Bucket.Start] = append(costs[r.Bucket.Start], c)
		}
	}
	for d := origin; !d.After(simNow); d = d.Add(24 * time.Hour) {
		if diff := cmp.Diff(h.sim.Costs(d, openaisim.CostsGroupBy), costs[d.Unix()]); diff != "" {
			t.Fatalf("costs of %s differ (-sim +raw):\n%s", d.Format(time.DateOnly), diff)
		}
	}

	// Every other usage endpoint: each bucket equals the simulator's.
	for _, spec := range stream.OfKind(stream.OpenAI, stream.UsageReport)[1:] {
		endpoint, dims := spec.Endpoint, spec.GroupSet
		got := map[int64][]any{}
		for _, r := range rawOf(t, recs, "usage."+endpoint) {
			if _, ok := got[r.Bucket.Start]; !ok {
				got[r.Bucket.Start] = []any{}
			}
			if r.Data != nil {
				var v any
				json.Unmarshal(r.Data, &v)
				got[r.Bucket.Start] = append(got[r.Bucket.Start], v)
			}
		}
		for d := origin; !d.After(simNow); d = d.Add(24 * time.Hour) {
			want := []any{}
			b, _ := json.Marshal(h.sim.Usage(endpoint, d.Unix(), dims))
			json.Unmarshal(b, &want)
			if diff := cmp.Diff(want, got[d.Unix()]); diff != "" {
				t.Fatalf("usage.%s of %s differs (-sim +raw):\n%s", endpoint, d.Format(time.DateOnly), diff)
			}
		}
	}

	// Directory: every user, inside one complete snapshot.
	users := rawOf(t, recs, "users")
	var ids []string
	for _, r := range users {
		if r.Snapshot.Marker == envelope.Item {
			var u openaisim.User
			json.Unmarshal(r.Data, &u)
			ids = append(ids, u.ID)
		}
	}
	var want []string
	for _, u := range h.sim.Users() {
		want = append(want, u.ID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("users in ogma.raw differ from the simulator:\n%s", diff)
	}
	if first, last := users[0].Snapshot, users[len(users)-1].Snapshot; first.Marker != envelope.Begin || last.Marker != envelope.End || last.Count != len(want) || first.ID != last.ID {
		t.Errorf("users walk not bracketed: first %+v, last %+v", first, last)
	}
	keys := 0
	for _, r := range rawOf(t, recs, "project_api_keys") {
		if r.Snapshot.Marker == envelope.Item {
			keys++
		}
	}
	if keys != len(h.sim.APIKeys()) {
		t.Errorf("project api keys in ogma.raw = %d, want %d", keys, len(h.sim.APIKeys()))
	}
	wantItems := directoryCounts(h.sim)
	delete(wantItems, "users")
	delete(wantItems, "project_api_keys")
	for stream, want := range wantItems {
		if got := items(t, recs, stream); got != want {
			t.Errorf("%s items in ogma.raw = %d, want the simulator's %d", stream, got, want)
		}
	}

	// A second poll of unchanged data publishes nothing.
	before := len(h.cluster.Records(t, topic.Raw))
	h.clock.Add(16 * time.Minute)
	h.waitPolls(t, "usage.completions", 2)
	if after := len(h.cluster.Records(t, topic.Raw)); after != before {
		t.Fatalf("unchanged re-poll published %d records", after-before)
	}

	// A restated bucket publishes that bucket alone.
	restated := simNow.Truncate(24*time.Hour).AddDate(0, 0, -2)
	h.sim.Restate(restated, 5000)
	h.clock.Add(16 * time.Minute)
	h.waitPolls(t, "usage.completions", 3)
	all := h.cluster.Records(t, topic.Raw)
	fresh := rawOf(t, all[before:], "usage.completions")
	if len(fresh) == 0 {
		t.Fatal("restated bucket was not published")
	}
	if diff := cmp.Diff(map[int64][]openaisim.CompletionsResult{restated.Unix(): h.sim.Completions(restated, openaisim.CompletionsGroupBy)},
		byBucket(t, fresh)); diff != "" {
		t.Errorf("re-poll after a restatement published (-want +got):\n%s", diff)
	}
}

// Issue 2: a failure between fetch and commit leaves the cursor where it
// was; the page is fetched again, and no raw record is visible twice to a
// read-committed reader.
func TestCursorNotAdvancedWhenPageCommitFails(t *testing.T) {
	var failed atomic.Bool
	h := start(t, openaisim.KeyFull, poll.Config{}, usageOnly)
	h.cluster.Broker.Cluster().ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit {
			h.cluster.Broker.Cluster().KeepControl()
			return nil, nil, false
		}
		failed.Store(true)
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return resp, nil, true
	})
	wait.Until(t, "an aborted transaction", func() bool {
		return testutil.ToFloat64(counter(h.reg, "ogma_connector_transactions_total", "result", "aborted")) >= 1
	})
	if !failed.Load() {
		t.Fatal("the injected EndTxn failure never happened")
	}
	h.clock.Add(time.Minute) // the failed poll's retry is due
	h.waitPolls(t, "usage.completions", 1)

	// The first page was fetched twice: once for the failed commit, once again.
	firstPages := 0
	for _, r := range h.sim.Requests() {
		if r.Path == "/v1/organization/usage/completions" && r.Query.Get("page") == "" {
			firstPages++
		}
	}
	if firstPages < 2 {
		t.Errorf("first usage page fetched %d times, want it fetched again after the failed commit", firstPages)
	}
	seen := map[string]int{}
	for _, r := range rawOf(t, h.cluster.Records(t, topic.Raw), "usage.completions") {
		seen[r.Key()]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("raw record %s visible %d times to a read-committed reader", k, n)
		}
	}
	buckets := map[string]bool{}
	for k := range seen {
		buckets[k[:strings.LastIndex(k, "/")]] = true
	}
	if len(buckets) != 91 {
		t.Errorf("buckets in ogma.raw = %d, want all 91 of the window", len(buckets))
	}
}

func counter(reg *prometheus.Registry, name, label, value string) prometheus.Collector {
	return collectorFunc(func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label && lp.GetValue() == value {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	})
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// DESIGN "Settlement": a bucket is chained once it settles, so the
// connector publishes today's bucket again when it settles, even unchanged.
func TestBucketRepublishedWhenItSettles(t *testing.T) {
	h := start(t, openaisim.KeyFull, poll.Config{}, usageOnly)
	h.waitPolls(t, "usage.completions", 1)
	before := len(h.cluster.Records(t, topic.Raw))

	today := simNow.Truncate(24 * time.Hour)
	h.clock.Add(today.Add(24*time.Hour + 61*time.Minute).Sub(simNow)) // tomorrow, past the 1 h grace
	h.waitPolls(t, "usage.completions", 2)
	fresh := rawOf(t, h.cluster.Records(t, topic.Raw)[before:], "usage.completions")
	if diff := cmp.Diff(map[int64][]openaisim.CompletionsResult{today.Unix(): h.sim.Completions(today, openaisim.CompletionsGroupBy)},
		byBucket(t, fresh)); diff != "" {
		t.Errorf("after settling, the poll published (-want +got):\n%s", diff)
	}

	// Settled and unchanged: nothing more.
	before = len(h.cluster.Records(t, topic.Raw))
	h.clock.Add(16 * time.Minute)
	h.waitPolls(t, "usage.completions", 3)
	if after := len(h.cluster.Records(t, topic.Raw)); after != before {
		t.Errorf("a settled, unchanged bucket was published again (%d records)", after-before)
	}
}

// connect seals the simulator's key of kind as the next generation.
func (h *harness) connect(t *testing.T, kind string, gen int) {
	t.Helper()
	sealed, err := h.kr.Seal(seal.NewSecret(h.sim.Key(kind)), "acme", openai.Vendor, gen)
	if err != nil {
		t.Fatal(err)
	}
	if err := control.Publish(t.Context(), h.cluster.Dial, h.kr, control.IntegrationRecord(h.cluster.Layout, control.Integration{
		Tenant: "acme", Vendor: openai.Vendor, Generation: gen, Sealed: sealed, SealedAt: h.clock.Now(), ConnectedAt: simNow,
		Status: control.StatusOK})); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) state(t *testing.T) *control.State {
	t.Helper()
	st, err := control.Load(t.Context(), h.cluster.Dial, h.cluster.Layout, h.kr)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *harness) cursor(t *testing.T, name string) (stream.Cursor, bool) {
	t.Helper()
	var c stream.Cursor
	found := false
	for _, r := range h.cluster.Records(t, topic.Cursors) {
		if string(r.Key) == (stream.ID{Tenant: "acme", Vendor: openai.Vendor, Stream: name}).Key() {
			json.Unmarshal(r.Value, &c)
			found = true
		}
	}
	return c, found
}

// Issue 4: a key without the management scope skips the directory streams,
// with the reason and their cursors untouched, while usage flows; a full
// key later backfills the directory over the whole window, with no
// duplicates.
func TestRestrictedKeyThenFullKey(t *testing.T) {
	h := start(t, openaisim.KeyUsageOnly, poll.Config{}, someStreams)
	h.waitPolls(t, "usage.completions", 1)
	wait.Until(t, "the users stream marked skipped", func() bool {
		return strings.Contains(h.state(t).Streams["acme/openai/users"].Skipped, "api.management.read")
	})
	if _, ok := h.cursor(t, "users"); ok {
		t.Fatal("a skipped stream got a cursor")
	}
	if len(rawOf(t, h.cluster.Records(t, topic.Raw), "users")) != 0 {
		t.Fatal("a skipped stream published records")
	}
	usageBefore := len(rawOf(t, h.cluster.Records(t, topic.Raw), "usage.completions"))

	h.connect(t, openaisim.KeyFull, 2)
	h.waitPolls(t, "users", 1)
	h.waitPolls(t, "project_api_keys", 1)
	c, ok := h.cursor(t, "users")
	if want := simNow.Truncate(24*time.Hour).AddDate(0, 0, -90); !ok || !c.Origin.Equal(want) {
		t.Errorf("users cursor origin = %v (found %v), want connect − 90 d = %v", c.Origin, ok, want)
	}
	wait.Until(t, "users no longer skipped", func() bool { return h.state(t).Streams["acme/openai/users"].Skipped == "" })
	items := 0
	for _, r := range rawOf(t, h.cluster.Records(t, topic.Raw), "users") {
		if r.Snapshot.Marker == envelope.Item {
			items++
		}
	}
	if items != len(h.sim.Users()) {
		t.Errorf("users backfilled = %d, want %d", items, len(h.sim.Users()))
	}
	seen := map[string]bool{}
	usage := rawOf(t, h.cluster.Records(t, topic.Raw), "usage.completions")
	for _, r := range usage {
		if seen[r.Key()] {
			t.Fatalf("usage record %s published twice", r.Key())
		}
		seen[r.Key()] = true
	}
	if len(usage) != usageBefore {
		t.Errorf("the new key republished usage: %d → %d records", usageBefore, len(usage))
	}
}

// Issue 4: a key revoked mid-run turns the integration key_invalid within
// one poll, and no further vendor call is made for the tenant.
func TestRevokedKeyStopsPolling(t *testing.T) {
	h := start(t, openaisim.KeyFull, poll.Config{}, usageOnly)
	h.waitPolls(t, "usage.completions", 1)
	h.sim.Revoke(openaisim.KeyFull)
	h.clock.Add(16 * time.Minute)
	wait.Until(t, "key_invalid", func() bool {
		st := h.state(t)
		k := control.VendorKey{Tenant: "acme", Vendor: openai.Vendor}
		return st.KeyInvalid(k) && !st.Observed[k].Admin
	})
	calls := len(h.sim.Requests())
	h.clock.Add(2 * time.Hour) // every stream is due many times over
	// Absence cannot be waited for: give the 5 ms tick twenty turns.
	time.Sleep(100 * time.Millisecond)
	if got := len(h.sim.Requests()); got != calls {
		t.Errorf("%d vendor calls after the key was found invalid", got-calls)
	}
	if st := h.state(t).Streams["acme/openai/usage.completions"]; !strings.Contains(st.Error, "connect a new key") {
		t.Errorf("stream status error = %q, want it to say what to do", st.Error)
	}
}

func auditOnly(c *openai.Client) []poll.Scheduled {
	return []poll.Scheduled{{Stream: &openai.Audit{Client: c, Spec: stream.Must(stream.OpenAI, "audit_logs")}, Every: time.Hour}}
}

// Issue 5: audit logs come newest first; a window is read to its end, page
// by page, before the high-water mark moves; every event is kept whole;
// the audit_logs flag turns true once one is ingested.
func TestAuditLogsReadInWindows(t *testing.T) {
	h := startSim(t, openaisim.Config{Tier: openaisim.TierEnterprise}, openaisim.KeyFull, poll.Config{}, auditOnly)
	h.waitPolls(t, "audit_logs", 1)
	var ids []string
	for _, r := range rawOf(t, h.cluster.Records(t, topic.Raw), "audit_logs") {
		var e openaisim.AuditLog
		json.Unmarshal(r.Data, &e)
		ids = append(ids, e.ID)
		if !strings.Contains(string(r.Data), `"actor"`) {
			t.Fatalf("audit event not kept whole: %s", r.Data)
		}
	}
	origin := simNow.Truncate(24*time.Hour).AddDate(0, 0, -90).Unix()
	var want []string
	for _, e := range h.sim.AuditLogs() {
		if e.EffectiveAt >= origin && e.EffectiveAt < simNow.Unix() {
			want = append(want, e.ID)
		}
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Fatalf("audit events in ogma.raw differ from the simulator's window (-sim +raw):\n%s", diff)
	}
	pages := 0
	for _, r := range h.sim.Requests() {
		if r.Path == "/v1/organization/audit_logs" {
			pages++
		}
	}
	if pages < 3 {
		t.Errorf("the audit window was read in %d pages, want several", pages)
	}
	c, _ := h.cursor(t, "audit_logs")
	if c.State != "idle" || !c.WindowEnd.Equal(simNow) {
		t.Errorf("cursor after a whole window = %+v, want idle with the high-water at now", c)
	}
	wait.Until(t, "audit_logs observed", func() bool {
		return h.state(t).Observed[control.VendorKey{Tenant: "acme", Vendor: openai.Vendor}].AuditLogs
	})

	// The next window starts at the high-water mark: nothing is read twice.
	h.clock.Add(2 * time.Hour)
	h.waitPolls(t, "audit_logs", 2)
	if n := len(rawOf(t, h.cluster.Records(t, topic.Raw), "audit_logs")); n != len(ids) {
		t.Errorf("the second window published %d events again", n-len(ids))
	}
}

// Issue 5 (vendor-api-notes B1): before the api_key_id floor the usage is
// read without api_key_id, as a group set of its own; from the floor on,
// with the primary group set; the vendor never refuses a call.
func TestKeyGroupingFloor(t *testing.T) {
	floor := simNow.Truncate(24*time.Hour).AddDate(0, 0, -30)
	h := startSim(t, openaisim.Config{KeyGroupingFloor: floor.Unix()}, openaisim.KeyFull, poll.Config{},
		func(c *openai.Client) []poll.Scheduled {
			return []poll.Scheduled{{Stream: &openai.Usage{Client: c, Spec: stream.Must(stream.OpenAI, "usage.completions"), KeyGroupingFloor: floor}, Every: 15 * time.Minute}}
		})
	h.waitPolls(t, "usage.completions", 1)
	without := []string{"batch", "model", "project_id", "service_tier", "user_id"}
	for _, r := range rawOf(t, h.cluster.Records(t, topic.Raw), "usage.completions") {
		want := stream.Must(stream.OpenAI, "usage.completions").GroupSet
		if r.Bucket.Start < floor.Unix() {
			want = without
		}
		if !slices.Equal(r.GroupSet, want) {
			t.Fatalf("bucket %d read with group set %v, want %v", r.Bucket.Start, r.GroupSet, want)
		}
	}
	for _, r := range h.sim.Requests() {
		start, _ := strconv.ParseInt(r.Query.Get("start_time"), 10, 64)
		if start < floor.Unix() && slices.Contains(r.Query["group_by[]"], "api_key_id") {
			t.Errorf("asked for api_key_id before the floor: %v", r.Query)
		}
	}
	// The window before the floor equals the simulator's, grouped without keys.
	day := floor.AddDate(0, 0, -1)
	var got []openaisim.CompletionsResult
	for _, r := range rawOf(t, h.cluster.Records(t, topic.Raw), "usage.completions") {
		if r.Bucket.Start == day.Unix() && r.Data != nil {
			var c openaisim.CompletionsResult
			json.Unmarshal(r.Data, &c)
			got = append(got, c)
		}
	}
	if diff := cmp.Diff(h.sim.Completions(day, without), got); diff != "" {
		t.Errorf("the day before the floor (-sim +raw):\n%s", diff)
	}
}

// Issue 5: every list is paged: with a small page size each walk follows
// the vendor's cursors to the end and still lists every object.
func TestEveryListPages(t *testing.T) {
	h := start(t, openaisim.KeyFull, poll.Config{}, func(c *openai.Client) []poll.Scheduled {
		return []poll.Scheduled{
			{Stream: &openai.List{Client: c, Spec: stream.Must(stream.OpenAI, "users"), Path: "/v1/organization/users", Limit: 7}, Every: time.Hour},
			{Stream: &openai.List{Client: c, Spec: stream.Must(stream.OpenAI, "projects"), Path: "/v1/organization/projects", Limit: 3}, Every: time.Hour},
			{Stream: &openai.List{Client: c, Spec: stream.Must(stream.OpenAI, "admin_api_keys"), Path: "/v1/organization/admin_api_keys", Limit: 2}, Every: time.Hour},
			{Stream: &openai.ProjectList{Client: c, Spec: stream.Must(stream.OpenAI, "project_users"), Sub: "users", Limit: 3}, Every: time.Hour},
			{Stream: &openai.ProjectList{Client: c, Spec: stream.Must(stream.OpenAI, "project_service_accounts"), Sub: "service_accounts", Limit: 1}, Every: time.Hour},
			{Stream: &openai.ProjectList{Client: c, Spec: stream.Must(stream.OpenAI, "project_api_keys"), Sub: "api_keys", Limit: 5,
				Query: url.Values{"owner_project_access": {"any"}}}, Every: time.Hour},
			{Stream: &openai.Audit{Client: c, Spec: stream.Must(stream.OpenAI, "audit_logs"), Limit: 2}, Every: time.Hour},
		}
	})
	for _, s := range []string{"users", "projects", "admin_api_keys", "project_users", "project_service_accounts", "project_api_keys"} {
		h.waitPolls(t, s, 1)
	}
	recs := h.cluster.Records(t, topic.Raw)
	for stream, n := range directoryCounts(h.sim) {
		if got := items(t, recs, stream); got != n {
			t.Errorf("%s: %d objects, want %d", stream, got, n)
		}
	}
	paged := map[string]bool{}
	for _, r := range h.sim.Requests() {
		if r.Query.Get("after") != "" {
			path := r.Path
			if strings.HasPrefix(path, "/v1/organization/projects/") && strings.Count(path, "/") == 5 {
				path = path[strings.LastIndex(path, "/"):]
			}
			paged[path] = true
		}
	}
	for _, path := range []string{"/v1/organization/users", "/v1/organization/projects", "/v1/organization/admin_api_keys",
		"/users", "/service_accounts", "/api_keys"} {
		if !paged[path] {
			t.Errorf("%s was never paged (no after=)", path)
		}
	}
}

// Issue 5: an organization without user-level data: per_user_breakdown is
// false, and the raw usage still carries what attribution to the key holder
// needs — the key and project of each row, and each key's owner.
func TestNoUserDataKeepsKeyAttribution(t *testing.T) {
	h := startSim(t, openaisim.Config{NoUserData: true}, openaisim.KeyFull, poll.Config{}, someStreams)
	h.waitPolls(t, "usage.completions", 1)
	h.waitPolls(t, "project_api_keys", 1)
	recs := h.cluster.Records(t, topic.Raw)
	rows := 0
	for _, r := range rawOf(t, recs, "usage.completions") {
		if r.Data == nil {
			continue
		}
		var c openaisim.CompletionsResult
		json.Unmarshal(r.Data, &c)
		if c.UserID != nil {
			t.Fatalf("a row names a user: %s", r.Data)
		}
		if c.APIKeyID == nil || c.ProjectID == nil {
			t.Fatalf("a row lacks its key or project: %s", r.Data)
		}
		rows++
	}
	owners := 0
	for _, r := range rawOf(t, recs, "project_api_keys") {
		var k openaisim.APIKey
		if r.Data != nil && json.Unmarshal(r.Data, &k) == nil && (k.Owner.User != nil || k.Owner.ServiceAccount != nil) {
			owners++
		}
	}
	if rows == 0 || owners != len(h.sim.APIKeys()) {
		t.Errorf("usage rows %d, keys with an owner %d of %d", rows, owners, len(h.sim.APIKeys()))
	}
	if h.state(t).Observed[control.VendorKey{Tenant: "acme", Vendor: openai.Vendor}].PerUserBreakdown {
		t.Error("per_user_breakdown observed true without user ids")
	}
}

// directoryCounts returns how many objects each directory stream of sim
// lists.
func directoryCounts(sim *openaisim.Server) map[string]int {
	n := map[string]int{"users": len(sim.Users()), "projects": len(sim.Projects()), "admin_api_keys": len(sim.AdminAPIKeys()),
		"project_api_keys": len(sim.APIKeys())}
	for _, p := range sim.Projects() {
		n["project_users"] += len(sim.ProjectUsers(p.ID))
		n["project_service_accounts"] += len(sim.ServiceAccounts(p.ID))
	}
	return n
}

// items counts the objects (not the markers) of stream's walks in recs.
func items(t *testing.T, recs []*kgo.Record, stream string) int {
	t.Helper()
	n := 0
	for _, r := range rawOf(t, recs, stream) {
		if r.Snapshot.Marker == envelope.Item {
			n++
		}
	}
	return n
}
