package clickhouse_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// Issue 13: audit events are projected as who did what, when, in which
// project, to what; the log reads newest first, narrowed by type, actor
// (id or email) and project, in pages.
func TestAuditLogProjection(t *testing.T) {
	store, _ := chtest.NewStore(t)
	c := topictest.New(t)
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	events := []string{
		`{"id":"audit_log-1","type":"login.succeeded","effective_at":%d,"actor":{"type":"session","session":{"user":{"id":"user-ann","email":"Ann@Example.com"}}},"login.succeeded":{}}`,
		`{"id":"audit_log-2","type":"api_key.created","effective_at":%d,"project":{"id":"proj_1","name":"Search"},"actor":{"type":"api_key","api_key":{"id":"key_admin","type":"user","user":{"id":"user-bob","email":"bob@example.com"}}},"api_key.created":{"id":"key_new"}}`,
		`{"id":"audit_log-3","type":"api_key.created","effective_at":%d,"project":{"id":"proj_2","name":"Chat"},"actor":{"type":"session","session":{"user":{"id":"user-ann","email":"ann@example.com"}}},"api_key.created":{"id":"key_other"}}`,
	}
	prev := event.Genesis
	var recs []*event.Record
	for i, e := range events {
		data := fmt.Sprintf(e, base.Add(time.Duration(i)*time.Hour).Unix())
		rec, err := event.SealCanonicalKey(event.Event{Tenant: "acme", Seq: uint64(i + 1), Prev: prev, Kind: event.Fact, Vendor: stream.OpenAI,
			Stream: "audit_logs", Key: []byte(fmt.Sprintf(`{"id":"audit_log-%d"}`, i+1)), ObservedAt: "2026-11-23T12:00:00Z"},
			[]byte(data), strings.Repeat("0a", 32), event.Source{Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		prev, recs = rec.Hash, append(recs, rec)
	}
	c.ProduceEvents(t, recs...)
	defer runSink(t, c, store, clickhouse.SinkConfig{}, clickhouse.SinkDeps{})()
	q := clickhouse.AuditQuery{Tenant: "acme", Start: base.Add(-time.Hour), End: base.Add(24 * time.Hour)}
	wait.Until(t, "the audit events projected", func() bool {
		got, err := store.AuditLogs(t.Context(), q)
		return err == nil && len(got) == 3
	})

	ids := func(q clickhouse.AuditQuery) string {
		t.Helper()
		got, err := store.AuditLogs(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name string
		mod  func(*clickhouse.AuditQuery)
		want string
	}{
		{"newest first", func(*clickhouse.AuditQuery) {}, "audit_log-3,audit_log-2,audit_log-1"},
		{"by type", func(q *clickhouse.AuditQuery) { q.Type = "api_key.created" }, "audit_log-3,audit_log-2"},
		{"by actor email, any case", func(q *clickhouse.AuditQuery) { q.Actor = "ANN@example.com" }, "audit_log-3,audit_log-1"},
		{"by actor key", func(q *clickhouse.AuditQuery) { q.Actor = "key_admin" }, "audit_log-2"},
		{"by project", func(q *clickhouse.AuditQuery) { q.Project = "proj_1" }, "audit_log-2"},
		{"by time", func(q *clickhouse.AuditQuery) { q.End = base.Add(90 * time.Minute) }, "audit_log-2,audit_log-1"},
		{"a page", func(q *clickhouse.AuditQuery) { q.Offset, q.Limit = 1, 1 }, "audit_log-2"},
		{"another tenant", func(q *clickhouse.AuditQuery) { q.Tenant = "globex" }, ""},
	} {
		q := q
		tc.mod(&q)
		if got := ids(q); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	got, _ := store.AuditLogs(t.Context(), clickhouse.AuditQuery{Tenant: "acme", Start: base, End: base.Add(2 * time.Hour), Project: "proj_1"})
	if len(got) != 1 || got[0].ActorEmail != "bob@example.com" || got[0].ProjectName != "Search" || got[0].ResourceID != "key_new" || got[0].Seq != 2 {
		t.Errorf("audit_log-2 = %+v", got)
	}
}
