package clickhouse_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// The rollup reads as the usage table does, whatever was written after
// its build: a restatement, a redelivered copy, a new fact, a fact of a
// month read whole — each counted once, at its latest revision, in every
// window and grouping; and so again after the next build.
func TestRollupCountsEachFactOnceAtItsLatestRevision(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	conn := chtest.Conn(t, cfg)
	type fact struct {
		key, model, user string
		day              time.Time
		rev              uint32
		seq              uint64
		tokens, images   int64
		usd              string
		priced           uint8
	}
	write := func(facts ...fact) {
		t.Helper()
		b, err := conn.PrepareBatch(t.Context(), `INSERT INTO usage (tenant, vendor, stream, key, primary_set, day, bucket_start, model,
			user_id, input_tokens, images, rev, seq, estimated_usd, priced, price_version)`)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range facts {
			if err := b.Append("acme", "openai", "usage.completions", f.key, uint8(1), f.day, f.day, f.model, f.user,
				f.tokens, f.images, f.rev, f.seq, decimal.RequireFromString(f.usd), f.priced, "2026-12-01"); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
		// A build counts the rows written before the server's current
		// second (rows of this second may still be coming).
		wait.Until(t, "the server's clock to pass the rows' second", func() bool {
			var past uint8
			err := conn.QueryRow(t.Context(), "SELECT now() > max(written_at) FROM usage").Scan(&past)
			return err == nil && past == 1
		})
	}
	aug, sep, oct := time.Date(2026, 8, 14, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)
	write(
		fact{"a", "m1", "u1", aug, 0, 1, 100, 1, "1.5", 1},
		fact{"b", "m1", "u2", sep, 0, 2, 20, 0, "0.25", 1},
		fact{"c", "m2", "u1", oct, 0, 3, 7, 2, "0", 0},
		fact{"d", "m2", "u2", sep, 0, 4, 3, 0, "0.01", 1},
		fact{"d", "m2", "u2", sep, 1, 5, 30, 0, "0.1", 1}, // restated before the build
	)

	// Each check compares Usage with the latest revision of every fact
	// as the table's FINAL has it, summed by the same groups.
	windows := [][2]time.Time{
		{time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},  // months whole
		{time.Date(2026, 8, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)}, // parts of two
		{time.Date(2026, 9, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 4, 0, 0, 0, 0, time.UTC)},   // a day
		{time.Date(2026, 8, 11, 0, 0, 0, 0, time.UTC), time.Date(2026, 8, 21, 0, 0, 0, 0, time.UTC)}, // a tenth of a month
	}
	groupings := map[string]string{"": "''", "model": "model", "month": "toString(toStartOfMonth(day))", "day": "toString(day)",
		"week": "toString(toMonday(day))", "user": "user_id"}
	check := func(when string) {
		t.Helper()
		for _, w := range windows {
			for g, col := range groupings {
				q := clickhouse.UsageQuery{Tenant: "acme", Start: w[0], End: w[1]}
				if g != "" {
					q.GroupBy = []string{g}
				}
				rows, err := store.Usage(t.Context(), q)
				if err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				got := map[string]string{}
				for _, r := range rows {
					got[r.Dims.Get(g)] = fmt.Sprintf("%d tokens %d images %s usd unpriced %v", r.InputTokens, r.Images, r.EstimatedUSD.String(), r.Unpriced)
				}
				want := map[string]string{}
				res, err := conn.Query(t.Context(), `SELECT `+col+` AS g, sum(input_tokens), sum(images), toString(sum(estimated_usd)), min(priced)
					FROM usage FINAL WHERE tenant = 'acme' AND primary_set = 1 AND day >= toDate(?) AND day < toDate(?) GROUP BY g`,
					w[0].Format(time.DateOnly), w[1].Format(time.DateOnly))
				if err != nil {
					t.Fatal(err)
				}
				for res.Next() {
					var k, usd string
					var tokens, images int64
					var priced uint8
					if err := res.Scan(&k, &tokens, &images, &usd, &priced); err != nil {
						t.Fatal(err)
					}
					if g == "" {
						k = ""
					}
					want[k] = fmt.Sprintf("%d tokens %d images %s usd unpriced %v", tokens, images, decimal.RequireFromString(usd).String(), priced == 0)
				}
				res.Close()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, %s to %s by %q:\n got %v\nwant %v", when, w[0].Format(time.DateOnly), w[1].Format(time.DateOnly), g, got, want)
				}
				if g != "month" {
					continue
				}
				// Read by person, each source is summed in Go: by month
				// again, the same sums.
				q.GroupBy = []string{"month", "person"}
				rows, err = store.Usage(t.Context(), q)
				if err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				type sums struct {
					tokens, images int64
					usd            decimal.Decimal
					unpriced       bool
				}
				byMonth := map[string]*sums{}
				for _, r := range rows {
					m := byMonth[r.Dims.Get("month")]
					if m == nil {
						m = &sums{}
						byMonth[r.Dims.Get("month")] = m
					}
					m.tokens, m.images, m.usd, m.unpriced = m.tokens+r.InputTokens, m.images+r.Images, m.usd.Add(r.EstimatedUSD), m.unpriced || r.Unpriced
				}
				got = map[string]string{}
				for k, m := range byMonth {
					got[k] = fmt.Sprintf("%d tokens %d images %s usd unpriced %v", m.tokens, m.images, m.usd.String(), m.unpriced)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, %s to %s by month and person, summed by month:\n got %v\nwant %v", when, w[0].Format(time.DateOnly), w[1].Format(time.DateOnly), got, want)
				}
			}
		}
	}
	check("before any build")

	now := clickhouse.RollupsConfig{Margin: -1, MinRows: 1}
	if built, err := store.RefreshRollup(t.Context(), "acme", now); err != nil || !built {
		t.Fatalf("first build: built %v, %v", built, err)
	}
	check("after the build")

	write(
		fact{"a", "m1", "u1", aug, 1, 6, 111, 1, "1.6", 1}, // a restatement of a month read whole
		fact{"b", "m1", "u2", sep, 0, 2, 20, 0, "0.25", 1}, // a redelivered copy
		fact{"e", "m1", "u3", oct, 0, 7, 5, 0, "0.05", 1},  // a new fact
		fact{"c", "m2", "u1", oct, 1, 8, 9, 2, "0.02", 1},  // priced now
		fact{"f", "m3", "u3", sep, 0, 9, 1, 0, "0", 0},     // unpriced
	)
	check("after writes past the build")

	if built, err := store.RefreshRollup(t.Context(), "acme", now); err != nil || !built {
		t.Fatalf("second build: built %v, %v", built, err)
	}
	check("after the second build")
	if built, err := store.RefreshRollup(t.Context(), "acme", now); err != nil || built {
		t.Errorf("a third build with nothing new: built %v, %v", built, err)
	}

	// A third build drops the first: two are kept, the latest and the one
	// a read may still be reading.
	write(fact{"g", "m1", "u1", oct, 0, 10, 1, 0, "0", 1})
	if built, err := store.RefreshRollup(t.Context(), "acme", now); err != nil || !built {
		t.Fatalf("third build: built %v, %v", built, err)
	}
	check("after the third build")
	var builds, partitions uint64
	if err := conn.QueryRow(t.Context(), `SELECT uniqExact(build) FROM usage_rollup WHERE tenant = 'acme'`).Scan(&builds); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT uniqExact(partition) FROM system.parts WHERE database = ? AND table = 'usage_rollup' AND active`,
		cfg.Database).Scan(&partitions); err != nil {
		t.Fatal(err)
	}
	if builds != 2 || partitions != 2 {
		t.Errorf("after three builds, %d builds in %d partitions, want 2 in 2", builds, partitions)
	}
}

// Groups summed again after attribution stay apart when their values,
// joined, would read alike: model "m n" of project "p" is not model "m" of
// project "n p".
func TestAttributedGroupsDoNotRunTogether(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	conn := chtest.Conn(t, cfg)
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	b, err := conn.PrepareBatch(t.Context(), `INSERT INTO usage (tenant, vendor, stream, key, primary_set, day, bucket_start, model,
		project_id, input_tokens, seq)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range [][2]string{{"m n", "p"}, {"m", "n p"}} {
		if err := b.Append("acme", "openai", "usage.completions", f[0]+"/"+f[1], uint8(1), day, day, f[0], f[1], int64(i+1), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	rows, err := store.Usage(t.Context(), clickhouse.UsageQuery{Tenant: "acme", Start: day, End: day.AddDate(0, 0, 1),
		GroupBy: []string{"person", "model", "project"}})
	if err != nil || len(rows) != 2 {
		t.Fatalf("usage = %+v, %v; want the two groups apart", rows, err)
	}
}
