package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/connectors/anthropic"
	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
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
	sim     *anthropicsim.Server
	cluster *topictest.Cluster
	kr      *seal.Keyring
	clock   *clock
}

// start runs a connector for tenant "acme" (EU: Anthropic serves it),
// connected at simNow with the simulator's key of the given kind ("" for
// none), against a fresh broker.
func start(t *testing.T, keyKind string) *harness {
	t.Helper()
	h := &harness{
		sim:     anthropicsim.New(anthropicsim.Config{Seed: 5, Now: func() time.Time { return simNow }}),
		cluster: topictest.New(t),
		clock:   &clock{t: simNow},
	}
	srv := httptest.NewServer(h.sim)
	t.Cleanup(srv.Close)
	h.kr, _ = sealtest.Keyring(t)
	l := h.cluster.Layout
	recs := []*kgo.Record{control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyEU, CreatedAt: simNow})}
	if keyKind != "" {
		sealed, err := h.kr.Seal(seal.NewSecret(h.sim.Key(keyKind)), "acme", stream.Anthropic, 1)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: stream.Anthropic, Generation: 1,
			Sealed: sealed, SealedAt: simNow, ConnectedAt: simNow, Status: control.StatusOK}))
	}
	if err := control.Publish(t.Context(), h.cluster.Dial, h.kr, recs...); err != nil {
		t.Fatal(err)
	}
	client, err := anthropic.NewClient(anthropic.ClientConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := poll.New(poll.Config{Tick: 5 * time.Millisecond, SessionTimeout: 6 * time.Second, Jitter: -1}, poll.Deps{
		Dial: h.cluster.Dial, Layout: l, Keyring: h.kr,
		Vendors:    map[string][]poll.Scheduled{stream.Anthropic: anthropic.Streams(client, 15*time.Minute, time.Hour)},
		Registerer: prometheus.NewRegistry(), Now: h.clock.Now, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		err := conn.Run(t.Context())
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("connector: %v", err)
		}
		errc <- err
	}()
	t.Cleanup(func() { <-errc })
	return h
}

func (h *harness) state(t *testing.T) *control.State {
	t.Helper()
	st, err := control.Load(t.Context(), h.cluster.Dial, h.cluster.Layout, h.kr)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// polled waits until every named stream has a poll recorded in ogma.control.
func (h *harness) polled(t *testing.T, names ...string) *control.State {
	t.Helper()
	var st *control.State
	wait.Until(t, fmt.Sprintf("polls of %v", names), func() bool {
		st = h.state(t)
		for _, n := range names {
			if st.Streams[stream.ID{Tenant: "acme", Vendor: stream.Anthropic, Stream: n}.Key()].LastPoll.IsZero() {
				return false
			}
		}
		return true
	})
	return st
}

// raws returns the raw records of one stream, decoded.
func (h *harness) raws(t *testing.T, name string) []*envelope.Raw {
	t.Helper()
	var out []*envelope.Raw
	for _, r := range h.cluster.Records(t, topic.Raw) {
		raw, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Vendor == stream.Anthropic && raw.Stream == name {
			out = append(out, raw)
		}
	}
	return out
}

// rowsByDay groups a report stream's rows by bucket day, as JSON values.
func rowsByDay(t *testing.T, raws []*envelope.Raw) map[time.Time][]string {
	t.Helper()
	out := map[time.Time][]string{}
	for _, r := range raws {
		day := time.Unix(r.Bucket.Start, 0).UTC()
		if _, ok := out[day]; !ok {
			out[day] = []string{}
		}
		if r.Data != nil {
			out[day] = append(out[day], compact(t, r.Data))
		}
	}
	return out
}

func compact(t *testing.T, v any) string {
	t.Helper()
	var x any
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(x)
	return string(out)
}

func jsonRows[T any](t *testing.T, rows []T) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, compact(t, r))
	}
	return out
}

// Issue 12: every Anthropic stream, read through the connector, equals the
// simulator's own data over the 90-day backfill; only GET is sent, never
// more than five group_by[] dimensions; the usage by account is a breakdown
// that never enters totals.
func TestEveryStreamEqualsSimulator(t *testing.T) {
	h := start(t, anthropicsim.KeyAdmin)
	var names []string
	for _, s := range stream.Of(stream.Anthropic) {
		names = append(names, s.Name)
	}
	h.polled(t, names...)

	origin := simNow.Truncate(24*time.Hour).AddDate(0, 0, -90)
	days := func() []time.Time {
		var out []time.Time
		for d := origin; !d.After(simNow); d = d.Add(24 * time.Hour) {
			out = append(out, d)
		}
		return out
	}()
	reports := []struct {
		name string
		want func(day time.Time) []string
	}{
		{"usage.messages", func(d time.Time) []string {
			return jsonRows(t, h.sim.Usage(d, stream.Must(stream.Anthropic, "usage.messages").GroupSet))
		}},
		{"usage.messages_by_account", func(d time.Time) []string {
			return jsonRows(t, h.sim.Usage(d, stream.Must(stream.Anthropic, "usage.messages_by_account").GroupSet))
		}},
		{"costs", func(d time.Time) []string {
			return jsonRows(t, h.sim.Costs(d, stream.Must(stream.Anthropic, "costs").GroupSet))
		}},
		{"claude_code", func(d time.Time) []string { return jsonRows(t, h.sim.ClaudeCode(d)) }},
	}
	for _, rep := range reports {
		got := rowsByDay(t, h.raws(t, rep.name))
		rows := 0
		for _, d := range days {
			want := rep.want(d)
			rows += len(want)
			if !slices.Equal(got[d], want) {
				t.Errorf("%s %s: %d rows, want the simulator's %d", rep.name, d.Format(time.DateOnly), len(got[d]), len(want))
			}
		}
		t.Logf("%s: %d rows over %d days", rep.name, rows, len(days))
		if rows == 0 {
			t.Errorf("%s: the simulator has no rows in the window; the test proves nothing", rep.name)
		}
	}
	primary, byAccount := stream.Must(stream.Anthropic, "usage.messages"), stream.Must(stream.Anthropic, "usage.messages_by_account")
	if byAccount.Counts(byAccount.GroupSet, "apikey_1") || primary.Counts(primary.GroupSet, "") || !primary.Counts(primary.GroupSet, "apikey_1") ||
		!byAccount.Counts(byAccount.GroupSet, "") {
		t.Error("totals count a keyed row twice, or a keyless row in both reports: want keyed rows from usage.messages, keyless ones from the breakdown by account")
	}

	lists := map[string]int{"users": len(h.sim.Users()), "workspaces": len(h.sim.Workspaces()), "api_keys": len(h.sim.APIKeys()), "invites": 3,
		"workspace_members": len(h.sim.Users())}
	for name, want := range lists {
		items := 0
		for _, r := range h.raws(t, name) {
			if r.Snapshot != nil && r.Snapshot.Marker == envelope.Item {
				items++
			}
		}
		if items != want {
			t.Errorf("%s: %d objects, want %d", name, items, want)
		}
	}

	for _, r := range h.sim.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("the connector sent %s %s", r.Method, r.Path)
		}
		if n := len(r.Query["group_by[]"]); n > 5 {
			t.Errorf("%s asked for %d group_by[] dimensions; the vendor refuses more than 5", r.Path, n)
		}
	}
	obs := h.state(t).Observed[control.VendorKey{Tenant: "acme", Vendor: stream.Anthropic}]
	if !obs.Admin || !obs.Costs || !obs.ClaudeCode || !obs.Workspaces || !obs.PerUserBreakdown {
		t.Errorf("observed = %+v, want every flag true for an admin key", obs)
	}
}

// Issue 12, DESIGN "Security rules": a key without permission on the cost
// and Claude Code reports soft-skips those streams — their cursors
// untouched, the reason recorded — while usage flows.
func TestPermissionErrorSoftSkips(t *testing.T) {
	h := start(t, anthropicsim.KeyNoCosts)
	st := h.polled(t, "usage.messages", "costs", "claude_code", "users")
	for _, name := range []string{"costs", "claude_code"} {
		ss := st.Streams[stream.ID{Tenant: "acme", Vendor: stream.Anthropic, Stream: name}.Key()]
		if !strings.Contains(ss.Skipped, "permission") {
			t.Errorf("%s skipped = %q, want the permission it lacks", name, ss.Skipped)
		}
		if n := len(h.raws(t, name)); n != 0 {
			t.Errorf("%s: %d records from a stream the key may not read", name, n)
		}
		for _, r := range h.cluster.Records(t, topic.Cursors) {
			if string(r.Key) == (stream.ID{Tenant: "acme", Vendor: stream.Anthropic, Stream: name}).Key() {
				t.Errorf("%s has a cursor", name)
			}
		}
	}
	if len(h.raws(t, "usage.messages")) == 0 {
		t.Error("usage did not flow")
	}
	if st.KeyInvalid(control.VendorKey{Tenant: "acme", Vendor: stream.Anthropic}) {
		t.Error("a permission error turned the key invalid")
	}
}

// Issue 12: a key Anthropic rejects (authentication_error) turns the
// integration key_invalid and admin false.
func TestAuthenticationErrorIsKeyInvalid(t *testing.T) {
	h := start(t, anthropicsim.KeyAdmin)
	h.polled(t, "usage.messages")
	h.sim.Revoke(anthropicsim.KeyAdmin)
	h.clock.Add(16 * time.Minute)
	wait.Until(t, "key_invalid", func() bool {
		st := h.state(t)
		k := control.VendorKey{Tenant: "acme", Vendor: stream.Anthropic}
		return st.KeyInvalid(k) && !st.Observed[k].Admin
	})
}

// Issue 12: a tenant without an Anthropic key is a no-op for the Anthropic
// pollers: no call, no error.
func TestNoKeyIsNoOp(t *testing.T) {
	h := start(t, "")
	// Absence cannot be waited for: the connector has its tenant once
	// ogma.control is read; give its 5 ms tick twenty turns after that.
	wait.Until(t, "the tenant loaded", func() bool { _, ok := h.state(t).Tenants["acme"]; return ok })
	time.Sleep(100 * time.Millisecond)
	if n := len(h.sim.Requests()); n != 0 {
		t.Errorf("%d vendor calls for a tenant with no key", n)
	}
}
