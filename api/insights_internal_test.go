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
		return clickhouse.UsageRow{Dims: map[string]string{"vendor": vendor, "model": model}, InputTokens: tokens,
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
