package price_test

import (
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/price"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// The table is dated data (vendor-apis.md §3): a price change takes effect
// on its day, a dated model id takes its family's row, an alias its row's.
func TestLookupIsDated(t *testing.T) {
	table := price.Default()
	cases := []struct {
		vendor, model, day string
		input, cacheRead   string // "" for unpriced
	}{
		{stream.OpenAI, "gpt-5.6-terra", "2026-07-29", "2.5", "0.25"},
		{stream.OpenAI, "gpt-5.6-terra", "2026-07-30", "2", "0.2"},
		{stream.OpenAI, "gpt-4.1-mini-2025-04-14", "2026-11-01", "0.4", "0.1"},
		{stream.OpenAI, "gpt-5.6", "2026-11-01", "4", "0.4"},
		{stream.Anthropic, "claude-sonnet-5-5", "2026-10-06", "2", "0.2"},
		{stream.Anthropic, "claude-sonnet-5-5", "2026-10-07", "2", "0.1"},
		{stream.Anthropic, "claude-sonnet-4-5-20250929", "2026-11-01", "3", "0.3"},
		{stream.Anthropic, "claude-opus-4-6", "2026-11-01", "5", "0.5"},
		{stream.Anthropic, "claude-opus-5-5", "2026-09-21", "", ""}, // not released yet
		{stream.Anthropic, "gpt-6-sol", "2026-11-01", "", ""},       // another vendor's model
		{stream.OpenAI, "gpt-9-imaginary", "2026-11-01", "", ""},
	}
	for _, tc := range cases {
		r, ok := table.Lookup(tc.vendor, tc.model, day(tc.day))
		got, cached := "", ""
		if ok {
			got, cached = r.Input.String(), r.CacheRead.String()
		}
		if got != tc.input || cached != tc.cacheRead {
			t.Errorf("Lookup(%s, %s, %s) = input %q cache read %q, want %q %q", tc.vendor, tc.model, tc.day, got, cached, tc.input, tc.cacheRead)
		}
	}
}

// Estimates price each kind of input at its rate: cache reads at the
// cached rate, cache writes at theirs where the vendor bills them (else as
// input), batch and flex at half; an unpriced model is unpriced, never 0.
func TestEstimate(t *testing.T) {
	table := price.Default()
	cases := []struct {
		name   string
		vendor string
		u      normalize.Usage
		want   string // "" for unpriced
	}{
		// vendor-apis.md §2.4's example row: 1500·5 + 500·6.25 + 1000·10 + 200·0.5 + 500·25 per 1M.
		{"anthropic, both cache writes", stream.Anthropic, normalize.Usage{Model: "claude-opus-4-6", ServiceTier: "standard",
			InputTokens: 3200, InputCachedTokens: 200, InputCacheWrite5m: 500, InputCacheWrite1h: 1000, OutputTokens: 500}, "0.033225"},
		{"anthropic batch", stream.Anthropic, normalize.Usage{Model: "claude-opus-4-6", ServiceTier: "batch",
			InputTokens: 3200, InputCachedTokens: 200, InputCacheWrite5m: 500, InputCacheWrite1h: 1000, OutputTokens: 500}, "0.0166125"},
		// 500·2 + 400·0.2 + 100·2.5 + 500·10 per 1M.
		{"openai, billed cache writes", stream.OpenAI, normalize.Usage{Model: "gpt-6-sol", ServiceTier: "default",
			InputTokens: 1000, InputCachedTokens: 400, InputCacheWrite5m: 100, OutputTokens: 500}, "0.00633"},
		{"openai flex", stream.OpenAI, normalize.Usage{Model: "gpt-6-sol", ServiceTier: "flex",
			InputTokens: 1000, InputCachedTokens: 400, InputCacheWrite5m: 100, OutputTokens: 500}, "0.003165"},
		{"openai batch", stream.OpenAI, normalize.Usage{Model: "gpt-6-sol", Batch: "true", ServiceTier: "default",
			InputTokens: 1000, InputCachedTokens: 400, InputCacheWrite5m: 100, OutputTokens: 500}, "0.003165"},
		// No cache-write charge before GPT-5.6: writes are input. 600·0.4 + 400·0.1 + 500·1.6 per 1M.
		{"openai, writes not billed", stream.OpenAI, normalize.Usage{Model: "gpt-4.1-mini",
			InputTokens: 1000, InputCachedTokens: 400, InputCacheWrite5m: 100, OutputTokens: 500}, "0.00108"},
		{"unpriced model", stream.OpenAI, normalize.Usage{Model: "gpt-9-imaginary", InputTokens: 1000}, ""},
		{"no model", stream.OpenAI, normalize.Usage{InputTokens: 1000}, ""},
		{"no tokens, whatever the model", stream.OpenAI, normalize.Usage{Model: "gpt-image-1", NumModelRequests: 3}, "0"},
		// Units other than tokens: at the vendor's unit price, else unpriced,
		// never 0. 3200 tokens as above + 10 web searches at $0.01.
		{"anthropic web searches", stream.Anthropic, normalize.Usage{Model: "claude-opus-4-6", ServiceTier: "standard",
			InputTokens: 3200, InputCachedTokens: 200, InputCacheWrite5m: 500, InputCacheWrite1h: 1000, OutputTokens: 500, Calls: 10}, "0.133225"},
		{"openai images", stream.OpenAI, normalize.Usage{Model: "gpt-image-1", Images: 4, NumModelRequests: 2}, ""},
		{"openai vector store bytes", stream.OpenAI, normalize.Usage{Bytes: 1 << 20}, ""},
	}
	for _, tc := range cases {
		e := table.Estimate(tc.vendor, day("2026-11-20"), tc.u)
		got := ""
		if e.Priced {
			got = e.USD.String()
		} else if !e.USD.IsZero() && tc.u.InputTokens == 0 {
			t.Errorf("%s: unpriced with no tokens, yet USD %s", tc.name, e.USD)
		}
		if got != tc.want || e.Version != table.Version {
			t.Errorf("%s: Estimate = %q (priced %v, version %q), want %q of version %q", tc.name, got, e.Priced, e.Version, tc.want, table.Version)
		}
	}
}

// Every model the simulators use for tokens is priced once released: their
// estimates are never silently partial. (The OpenAI simulator uses GPT-6
// before its release of 2026-09-22; those days are unpriced, as they
// would be.)
func TestSimulatedModelsArePriced(t *testing.T) {
	table := price.Default()
	for vendor, models := range map[string][]string{
		stream.OpenAI: {"gpt-6-sol", "gpt-6-luna", "gpt-5.6-terra", "gpt-5.4-mini", "gpt-4.1-mini", "o4-mini",
			"text-embedding-3-small", "text-embedding-3-large", "omni-moderation-latest"},
		stream.Anthropic: {"claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"},
	} {
		for _, m := range models {
			if _, ok := table.Lookup(vendor, m, day("2026-11-01")); !ok {
				t.Errorf("%s %s is not priced on 2026-11-01", vendor, m)
			}
		}
	}
}

// A table without a version, or with a row it cannot date, is refused.
func TestParseRefusesAnUndatedTable(t *testing.T) {
	for _, b := range []string{`{"models":[]}`, `{"version":"v","models":[{"vendor":"openai","model":"m","from":"soon","input":"1","output":"1"}]}`, `[`} {
		if _, err := price.Parse([]byte(b)); err == nil {
			t.Errorf("Parse(%s) = nil error", b)
		}
	}
}

// A row part priced is a lower bound: its tokens' estimate stands beside
// the units the table cannot price.
func TestEstimateOfAPartlyPricedRowIsALowerBound(t *testing.T) {
	e := price.Default().Estimate(stream.OpenAI, day("2026-11-20"), normalize.Usage{Model: "gpt-4.1-mini", InputTokens: 1000, Calls: 5})
	if e.Priced || e.USD.String() != "0.0004" {
		t.Errorf("Estimate = %s (priced %v), want 0.0004 unpriced", e.USD, e.Priced)
	}
}
