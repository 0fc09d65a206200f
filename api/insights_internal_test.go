package api

import (
	"math"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// Shares are parts of each period's whole, across vendors; a model that
// grows from nothing is the largest shift, one that disappears the next.
func TestModelSharesAcrossVendors(t *testing.T) {
	row := func(vendor, model string, tokens int64, usd string, unpriced bool) clickhouse.UsageRow {
		return clickhouse.UsageRow{Dims: clickhouse.DimsOf(map[string]string{"vendor": vendor, "model": model}), InputTokens: tokens,
			EstimatedUSD: decimal.RequireFromString(usd), Unpriced: unpriced}
	}
	before := []clickhouse.UsageRow{row("openai", "gpt-6-sol", 600, "6", false), row("openai", "gpt-4.1-mini", 400, "1", false)}
	now := []clickhouse.UsageRow{row("openai", "gpt-6-sol", 500, "5", false), row("anthropic", "claude-opus-4-6", 500, "10", false),
		row("anthropic", "claude-opus-4-6", 0, "0", true)}
	got := modelShares(now, before)
	type want struct {
		model             string
		share, prev, cost float64
		unpriced          bool
	}
	wants := []want{
		{"claude-opus-4-6", 0.5, 0, 10.0 / 15, true},
		{"gpt-4.1-mini", 0, 0.4, 0, false},
		{"gpt-6-sol", 0.5, 0.6, 5.0 / 15, false},
	}
	if len(got) != len(wants) {
		t.Fatalf("modelShares = %d models, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Model != w.model || math.Abs(g.TokenShare-w.share) > 1e-9 || math.Abs(g.PreviousTokenShare-w.prev) > 1e-9 ||
			math.Abs(g.CostShare-w.cost) > 1e-9 || g.Unpriced != w.unpriced || math.Abs(g.TokenShift-(w.share-w.prev)) > 1e-9 {
			t.Errorf("share %d = %v, want %+v", i, g, w)
		}
	}
}

// Issue 13: a day's billed cost of a project is shared among the people
// whose usage it holds by their estimated cost — by tokens where nothing
// is priced — and unattributed usage keeps its share.
func TestBilledCostIsSharedByEstimate(t *testing.T) {
	row := func(person, vendor, day, project, usd string, tokens int64) clickhouse.UsageRow {
		return clickhouse.UsageRow{Dims: clickhouse.DimsOf(map[string]string{"person": person, "vendor": vendor, "day": day, "project": project, "attribution": "user"}),
			InputTokens: tokens, EstimatedUSD: decimal.RequireFromString(usd)}
	}
	cost := func(vendor, day, project, amount string) clickhouse.CostRow {
		return clickhouse.CostRow{Dims: clickhouse.DimsOf(map[string]string{"vendor": vendor, "day": day, "project": project}), Amount: decimal.RequireFromString(amount)}
	}
	rows := []clickhouse.UsageRow{
		row("ann@x", "openai", "2026-11-01", "p1", "3", 10),
		row("bob@x", "openai", "2026-11-01", "p1", "1", 10),
		row("", "openai", "2026-11-01", "p1", "4", 10),       // no one's
		row("ann@x", "anthropic", "2026-11-01", "", "0", 30), // nothing priced: by tokens
		row("bob@x", "anthropic", "2026-11-01", "", "0", 10),
		row("bob@x", "openai", "2026-11-02", "p1", "1", 10), // billed nothing that day
	}
	costs := []clickhouse.CostRow{cost("openai", "2026-11-01", "p1", "16"), cost("anthropic", "2026-11-01", "", "8")}
	got := attributeUsage(rows, costs)
	for email, want := range map[string]string{"ann@x": "12", "bob@x": "4"} {
		if b := got[email].total.billed; b.String() != want {
			t.Errorf("%s billed %s, want %s", email, b, want)
		}
	}
	if ann := got["ann@x"].vendors["anthropic"].billed; ann.String() != "6" {
		t.Errorf("ann's Anthropic share = %s, want 6 (30 of 40 tokens of $8)", ann)
	}
}
