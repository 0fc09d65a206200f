package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// Issue 13: each known cause of a gap between estimate and bill is named on
// its own day and project, and a day without a gap names none.
func TestReconciliationNamesEachCause(t *testing.T) {
	use := func(vendor, day, project, usd string, mod func(*clickhouse.UsageRow)) clickhouse.UsageRow {
		r := clickhouse.UsageRow{Dims: clickhouse.DimsOf(map[string]string{"vendor": vendor, "day": day, "project": project}),
			InputTokens: 1000, EstimatedUSD: decimal.RequireFromString(usd)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	bill := func(vendor, day, project, item, amount string, restated bool) clickhouse.CostRow {
		return clickhouse.CostRow{Dims: clickhouse.DimsOf(map[string]string{"vendor": vendor, "day": day, "project": project, "line_item": item}),
			Amount: decimal.RequireFromString(amount), Restated: restated}
	}
	usage := []clickhouse.UsageRow{
		use("openai", "2026-11-01", "p_even", "2", nil),
		use("openai", "2026-11-01", "p_cached", "1", func(r *clickhouse.UsageRow) { r.InputCachedTokens = 500 }),
		use("anthropic", "2026-11-01", "", "1", func(r *clickhouse.UsageRow) { r.InputCacheWrite1h = 200 }),
		use("openai", "2026-11-02", "p_new_model", "1", func(r *clickhouse.UsageRow) { r.Unpriced = true }),
		use("openai", "2026-11-03", "p_ft", "1", nil),
		use("openai", "2026-11-04", "p_restated", "1", nil),
		use("openai", "2026-11-05", "p_late", "1", nil), // its bill is not final yet
	}
	costs := []clickhouse.CostRow{
		bill("openai", "2026-11-01", "p_even", "gpt-6-sol, input", "2", false),
		bill("openai", "2026-11-01", "p_cached", "gpt-6-sol, input", "1.4", false),
		bill("anthropic", "2026-11-01", "", "Claude Opus 4.6 Usage - Cache Write (1h)", "1.2", false),
		bill("openai", "2026-11-02", "p_new_model", "gpt-9, input", "3", false),
		bill("openai", "2026-11-03", "p_ft", "gpt-6-sol, input", "1", false),
		bill("openai", "2026-11-03", "p_ft", "ft-gpt-4.1-mini, training", "25", false),
		bill("openai", "2026-11-04", "p_restated", "gpt-6-sol, input", "1.1", true),
		bill("openai", "2026-11-04", "p_orphan", "vector store storage", "0.5", false),
	}
	got := map[string][]string{}
	gaps := map[string]string{}
	for _, d := range reconcile(usage, costs, map[string]string{"openai": "2026-11-05", "anthropic": "2026-11-30"}, "v").Days {
		got[d.Day+" "+d.Vendor+" "+d.Project] = d.Causes
		gaps[d.Day+" "+d.Vendor+" "+d.Project] = d.GapUsd
	}
	want := map[string][]string{
		"2026-11-01 openai p_even":      {},
		"2026-11-01 openai p_cached":    {"cached_input"},
		"2026-11-01 anthropic ":         {"cache_writes"},
		"2026-11-02 openai p_new_model": {"unpriced_model"},
		"2026-11-03 openai p_ft":        {"line_items_without_tokens"},
		"2026-11-04 openai p_restated":  {"restated"},
		"2026-11-04 openai p_orphan":    {"line_items_without_tokens", "no_usage"},
		"2026-11-05 openai p_late":      {"cost_not_settled", "no_cost"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}
	if gaps["2026-11-03 openai p_ft"] != "25" || gaps["2026-11-05 openai p_late"] != "-1" {
		t.Errorf("gaps = %v, want billed − estimated", gaps)
	}
}

// A project's people are its usage's, largest estimate first, beside the
// share no one is attributed to; projects come largest bill first.
func TestProjectsAttributeSpend(t *testing.T) {
	use := func(vendor, project, person, usd string) clickhouse.UsageRow {
		return clickhouse.UsageRow{Dims: clickhouse.DimsOf(map[string]string{"vendor": vendor, "project": project, "person": person}),
			InputTokens: 10, EstimatedUSD: decimal.RequireFromString(usd)}
	}
	usage := []clickhouse.UsageRow{use("openai", "p1", "ann@x", "1"), use("openai", "p1", "bob@x", "3"), use("openai", "p1", "", "4"),
		use("anthropic", "", "ann@x", "2")}
	costs := []clickhouse.CostRow{
		{Dims: clickhouse.DimsOf(map[string]string{"vendor": "openai", "project": "p1"}), Amount: decimal.RequireFromString("6")},
		{Dims: clickhouse.DimsOf(map[string]string{"vendor": "anthropic", "project": ""}), Amount: decimal.RequireFromString("2")},
	}
	got := projects("acme", usage, costs, map[[2]string]string{{"openai", "p1"}: "Search"})
	if len(got.Projects) != 2 {
		t.Fatalf("projects = %v", got.Projects)
	}
	p := got.Projects[0]
	if p.Project != "p1" || p.Name != "Search" || p.BilledUsd != "6" || p.BilledShare != 0.75 || p.UnattributedShare != 0.5 ||
		len(p.People) != 2 || p.People[0].Email != "bob@x" || p.People[0].Share != 0.375 || p.People[1].Person != PersonID("acme", "ann@x") {
		t.Errorf("first project = %v", p)
	}
}
