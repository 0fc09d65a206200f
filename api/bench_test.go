package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// Usage of a 1,000-user organization over 90 days: each user on 3 models a
// day, all attributed through the directory — 270k settled rows.
const (
	benchUsers  = 1000
	benchDays   = 90
	benchModels = 3
)

// BenchmarkUsageQuery times GET /v1/usage grouped by person and model over
// 90 days of a 1,000-user organization, through the REST face (gateway,
// gRPC, attribution in Go): one request per iteration; p50 and p99 of the
// iterations (issue 13's target: p99 < 50 ms). written=none reads a
// rollup build that holds every row; written=since after 300 facts of the
// last days were restated since the build, as a running installation
// always has rows younger than the build's margin.
func BenchmarkUsageQuery(b *testing.B) {
	store, cfg := chtest.NewStore(b)
	conn := chtest.Conn(b, cfg)
	first := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	seedUsage(b, conn, first)
	buildRollup(b, store, conn)
	f := serveDeps(b, func(_ *topictest.Cluster, d *api.Deps) { d.Usage, d.Identity = store, store })
	// 90 settled days; then also today's open bucket (open=today).
	url := fmt.Sprintf("http://%s/v1/usage?start=%s&end=%s&group_by=person,model&page_size=10000", f.srv.HTTPAddr(),
		first.Format(time.DateOnly), first.AddDate(0, 0, benchDays).Format(time.DateOnly))
	get := func(b *testing.B) {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["acme"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /v1/usage: %d", resp.StatusCode)
		}
	}
	run := func(b *testing.B) {
		get(b) // a first read warms ClickHouse's caches, as any running installation has them
		var took []time.Duration
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			get(b)
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		q := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(float64(benchUsers*benchDays*benchModels), "rows")
	}
	b.Run("written=none", run)
	restate(b, conn, first.AddDate(0, 0, benchDays-3), 300)
	b.Run("written=since", run)
	url = strings.Replace(url, "end="+first.AddDate(0, 0, benchDays).Format(time.DateOnly), "end="+first.AddDate(0, 0, benchDays+1).Format(time.DateOnly), 1)
	b.Run("open=today", run)
}

// buildRollup builds the rollup of every row seeded, as the sink's
// refresher does once they are older than its margin.
func buildRollup(b *testing.B, store *clickhouse.Store, conn ch.Conn) {
	b.Helper()
	wait.Until(b, "the server's clock to pass the rows' second", func() bool {
		var past uint8
		err := conn.QueryRow(b.Context(), "SELECT now() > max(written_at) FROM usage").Scan(&past)
		return err == nil && past == 1
	})
	if built, err := store.RefreshRollup(b.Context(), "acme", clickhouse.RollupsConfig{Margin: -1, MinRows: 1}); err != nil || !built {
		b.Fatalf("rollup: built %v, %v", built, err)
	}
}

// seedUsage writes the organization's directory and settled usage rows as
// the sink writes them.
func seedUsage(b *testing.B, conn ch.Conn, first time.Time) {
	b.Helper()
	ids, err := conn.PrepareBatch(b.Context(), `INSERT INTO identities (tenant, vendor, object, id, subject_kind, subject_id, email,
		owner_kind, owner_id, project_id, absent, seq, name)`)
	if err != nil {
		b.Fatal(err)
	}
	for u := range benchUsers {
		id := fmt.Sprintf("user-%04d", u)
		if err := ids.Append("acme", stream.OpenAI, "user", id, "user", id, fmt.Sprintf("u%04d@example.com", u), "", "", "", uint8(0), uint64(u+1), "User"); err != nil {
			b.Fatal(err)
		}
	}
	if err := ids.Send(); err != nil {
		b.Fatal(err)
	}
	// Each day settled, as its manifest says (complete_through), and each
	// day's bucket as fetched while open, every hour, as ClickHouse keeps
	// it (usage_provisional keeps every version), settled by a last
	// version — and the day after, today, still open.
	manifests, err := conn.PrepareBatch(b.Context(), `INSERT INTO manifests (tenant, vendor, stream, bucket_start, seq)`)
	if err != nil {
		b.Fatal(err)
	}
	for d := range benchDays {
		if err := manifests.Append("acme", stream.OpenAI, "usage.completions", first.AddDate(0, 0, d).Format(time.RFC3339), uint64(d+1)); err != nil {
			b.Fatal(err)
		}
	}
	if err := manifests.Send(); err != nil {
		b.Fatal(err)
	}
	const fetches, bucketRows = 24, benchUsers * benchModels
	for _, stmt := range []string{
		fmt.Sprintf(`INSERT INTO usage_provisional (tenant, vendor, stream, bucket_start, version, kind, row, day, model, user_id, project_id,
			api_key_id, batch, service_tier, input_tokens, input_cached_tokens, output_tokens, num_model_requests, fetched_at, estimated_usd, priced, price_version)
			SELECT 'acme', 'openai', 'usage.completions', toDateTime('%s', 'UTC') + 86400 * intDiv(number, %d) AS b, intDiv(number, %d), 0,
				number %% %d, toDate(b), ['gpt-6-sol', 'gpt-6-luna', 'gpt-4.1-mini'][number %% 3 + 1],
				concat('user-', substring(toString(10000 + intDiv(number %% %[4]d, 3)), 2)), 'proj_1',
				concat('key_', substring(toString(10000 + intDiv(number %% %[4]d, 3)), 2)), 'false', 'default', 1000, 100, 200, 3, b,
				toDecimal64('0.001', 9), 1, '2026-12-02'
			FROM numbers(%d)`, first.Format(time.DateTime), fetches*bucketRows, bucketRows, bucketRows, (benchDays+1)*fetches*bucketRows),
		fmt.Sprintf(`INSERT INTO usage_provisional (tenant, vendor, stream, bucket_start, version, kind, day)
			SELECT 'acme', 'openai', 'usage.completions', toDateTime('%s', 'UTC') + 86400 * number AS b, 1000000 + number, 1, toDate(b)
			FROM numbers(%d)`, first.Format(time.DateTime), benchDays),
		`INSERT INTO provisional_versions (tenant, vendor, stream, bucket_start, version)
			SELECT tenant, vendor, stream, bucket_start, version FROM usage_provisional GROUP BY tenant, vendor, stream, bucket_start, version`,
	} {
		if err := conn.Exec(b.Context(), stmt); err != nil {
			b.Fatal(err)
		}
	}
	writeUsage(b, conn, func(add func(day time.Time, u, m int, rev uint32, seq uint64)) {
		seq := uint64(benchUsers)
		for d := range benchDays {
			for u := range benchUsers {
				for m := range benchModels {
					seq++
					add(first.AddDate(0, 0, d), u, m, 0, seq)
				}
			}
		}
	})
}

// restate writes a second revision of n facts of the days from first on.
func restate(b *testing.B, conn ch.Conn, first time.Time, n int) {
	b.Helper()
	writeUsage(b, conn, func(add func(day time.Time, u, m int, rev uint32, seq uint64)) {
		for i := range n {
			add(first.AddDate(0, 0, i%3), i/3%benchUsers, i%benchModels, 1, uint64(1e9+i))
		}
	})
}

// writeUsage inserts the usage rows each calls add for: user u's usage of
// model m on day, at revision rev.
func writeUsage(b *testing.B, conn ch.Conn, each func(add func(day time.Time, u, m int, rev uint32, seq uint64))) {
	b.Helper()
	rows, err := conn.PrepareBatch(b.Context(), `INSERT INTO usage (tenant, vendor, stream, key, primary_set, day, bucket_start, model,
		user_id, project_id, api_key_id, batch, service_tier, input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq,
		estimated_usd, priced, price_version)`)
	if err != nil {
		b.Fatal(err)
	}
	each(func(day time.Time, u, m int, rev uint32, seq uint64) {
		model := []string{"gpt-6-sol", "gpt-6-luna", "gpt-4.1-mini"}[m]
		key := fmt.Sprintf(`{"bucket_start":%q,"user_id":"user-%04d","model":%q}`, day.Format(time.RFC3339), u, model)
		if err := rows.Append("acme", stream.OpenAI, "usage.completions", key, uint8(1), day, day, model,
			fmt.Sprintf("user-%04d", u), "proj_1", fmt.Sprintf("key_%04d", u), "false", "default",
			int64(1000+u)+int64(rev), int64(100), int64(200+m), int64(3), rev, seq,
			decimal.RequireFromString("0.001"), uint8(1), "2026-12-02"); err != nil {
			b.Fatal(err)
		}
	})
	if err := rows.Send(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConsoleScreens times what each console screen asks of the API
// (web/src/screens), as the browser does — calls of one step in parallel,
// every page of a list — over 90 days of a 1,000-user organization ending
// today: one screen load per iteration; p50 and max of the loads (issue
// 14's target: no screen waits more than a second).
func BenchmarkConsoleScreens(b *testing.B) {
	store, cfg := chtest.NewStore(b)
	conn := chtest.Conn(b, cfg)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	seedUsage(b, conn, today.AddDate(0, 0, 1-benchDays))
	buildRollup(b, store, conn)
	f := serveDeps(b, func(_ *topictest.Cluster, d *api.Deps) { d.Usage, d.Identity, d.Audit = store, store, store })
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	w30 := "start=" + day(-30) + "&end=" + day(1)
	screens := []struct {
		name  string
		steps [][]string // each step's calls run in parallel; paths ending in "&" are paged
	}{
		{"usage", [][]string{{"/v1/usage?" + w30 + "&vendor=all&page_size=10000&group_by=model&",
			"/v1/usage?" + w30 + "&vendor=all&page_size=10000&group_by=day,model&"}}},
		{"users", [][]string{{"/v1/people?" + w30 + "&"}}},
		{"person", [][]string{{"/v1/people/" + api.PersonID("acme", "u0001@example.com") + "?" + w30}}},
		{"unmapped", [][]string{{"/v1/unmapped?" + w30}}},
		{"insights", [][]string{{"/v1/insights/forecast", "/v1/insights/model-mix?" + w30, "/v1/insights/projects?" + w30,
			"/v1/insights/reconciliation?start=" + day(-14) + "&end=" + day(1)}}},
		{"settings", [][]string{{"/v1/integrations"}}},
	}
	get := func(path string) {
		for token := ""; ; {
			url := "http://" + f.srv.HTTPAddr() + path
			if strings.HasSuffix(path, "&") {
				url += "page_token=" + token
			}
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+f.tokens["acme"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var page struct {
				Next string `json:"next_page_token"`
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
				return
			}
			json.Unmarshal(body, &page)
			if token = page.Next; token == "" || !strings.HasSuffix(path, "&") {
				return
			}
		}
	}
	load := func(steps [][]string) {
		for _, calls := range steps {
			var wg sync.WaitGroup
			for _, c := range calls {
				wg.Go(func() { get(c) })
			}
			wg.Wait()
		}
	}
	for _, s := range screens {
		b.Run("screen="+s.name, func(b *testing.B) {
			load(s.steps) // warm, as a running installation is
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				load(s.steps)
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		})
	}
}
