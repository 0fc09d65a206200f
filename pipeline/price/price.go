// Package price estimates what usage costs from the vendors' list prices:
// a dated, versioned table kept as data (prices.json, embedded), and the
// estimate of one canonical usage row. The vendors' cost endpoints are the
// authority for money; an estimate serves only where they cannot split
// (per key, per person, per model), and says so: it carries the table's
// version, and a model the table does not price is unpriced, never 0.
package price

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/pipeline/normalize"
)

//go:embed prices.json
var pricesJSON []byte

// Rates are the prices of one model from a day on, in dollars per million
// tokens. A rate left out is not billed: a model without CacheWrite5m has
// no cache-write charge (its writes count as plain input).
type Rates struct {
	Vendor       string           `json:"vendor"`
	Model        string           `json:"model"`
	Aliases      []string         `json:"aliases,omitempty"`
	From         string           `json:"from"`
	Input        decimal.Decimal  `json:"input"`
	CacheRead    *decimal.Decimal `json:"cache_read,omitempty"`
	CacheWrite5m *decimal.Decimal `json:"cache_write_5m,omitempty"`
	CacheWrite1h *decimal.Decimal `json:"cache_write_1h,omitempty"`
	Output       decimal.Decimal  `json:"output"`
	from         time.Time
}

// UnitPrice is the price of one unit of usage that is not tokens, from a
// day on: Unit names a column of normalize.Usage (see Units).
type UnitPrice struct {
	Vendor string          `json:"vendor"`
	Unit   string          `json:"unit"`
	From   string          `json:"from"`
	USD    decimal.Decimal `json:"usd"`
	Note   string          `json:"note,omitempty"`
	from   time.Time
}

// Unit is a unit of usage that is not tokens.
type Unit struct {
	// Name is what the price table and the API call it.
	Name string
	// Of reads the unit's count of a usage row.
	Of func(normalize.Usage) int64
}

// Units are the units of usage that are not tokens.
var Units = []Unit{
	{"images", func(u normalize.Usage) int64 { return u.Images }},
	{"characters", func(u normalize.Usage) int64 { return u.Characters }},
	{"seconds", func(u normalize.Usage) int64 { return u.Seconds }},
	{"bytes", func(u normalize.Usage) int64 { return u.Bytes }},
	{"sessions", func(u normalize.Usage) int64 { return u.Sessions }},
	{"calls", func(u normalize.Usage) int64 { return u.Calls }},
}

// Table is a version of the price table. It is read-only once loaded and
// safe for concurrent use.
type Table struct {
	Version string `json:"version"`
	Source  string `json:"source"`
	Unit    string `json:"unit"`
	// Tiers maps a vendor's service tier (or "batch") to its price factor.
	Tiers  map[string]map[string]decimal.Decimal `json:"tiers"`
	Models []Rates                               `json:"models"`
	// UnitPrices price units other than tokens, vendor-wide.
	UnitPrices []UnitPrice `json:"units"`
	// byID holds each vendor's rows by model id and alias, latest first:
	// the sink looks one up for every usage row.
	byID map[[2]string][]Rates
}

// Default returns the table shipped with this build.
func Default() *Table {
	t, err := Parse(pricesJSON)
	if err != nil {
		panic("price: the embedded table: " + err.Error()) // a build that ships a broken table is a programmer error
	}
	return t
}

// Parse reads a price table.
func Parse(b []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	if t.Version == "" {
		return nil, fmt.Errorf("price table: no version")
	}
	for i := range t.Models {
		r := &t.Models[i]
		from, err := time.Parse(time.DateOnly, r.From)
		if err != nil || r.Vendor == "" || r.Model == "" {
			return nil, fmt.Errorf("price table: row %d (%s %s): want vendor, model and from (YYYY-MM-DD)", i, r.Vendor, r.Model)
		}
		r.from = from
	}
	for i := range t.UnitPrices {
		u := &t.UnitPrices[i]
		from, err := time.Parse(time.DateOnly, u.From)
		if err != nil || !slices.ContainsFunc(Units, func(n Unit) bool { return n.Name == u.Unit }) {
			return nil, fmt.Errorf("price table: unit price %d (%s %s): want a known unit and from (YYYY-MM-DD)", i, u.Vendor, u.Unit)
		}
		u.from = from
	}
	// Latest first, so that a lookup takes the first row in force.
	slices.SortStableFunc(t.Models, func(a, b Rates) int { return b.from.Compare(a.from) })
	slices.SortStableFunc(t.UnitPrices, func(a, b UnitPrice) int { return b.from.Compare(a.from) })
	t.byID = map[[2]string][]Rates{}
	for _, r := range t.Models {
		for _, id := range append([]string{r.Model}, r.Aliases...) {
			k := [2]string{r.Vendor, id}
			t.byID[k] = append(t.byID[k], r)
		}
	}
	return &t, nil
}

// dated is a dated model id's suffix: claude-sonnet-4-5-20250929,
// gpt-4.1-mini-2025-04-14.
var dated = regexp.MustCompile(`-(\d{8}|\d{4}-\d{2}-\d{2})$`)

// Lookup returns the rates of vendor's model in force on day; a dated id
// takes its family's row. ok is false for a model the table does not price.
func (t *Table) Lookup(vendor, model string, day time.Time) (Rates, bool) {
	if r, ok := t.inForce(vendor, model, day); ok {
		return r, true
	}
	if family := dated.ReplaceAllString(model, ""); family != model {
		return t.inForce(vendor, family, day)
	}
	return Rates{}, false
}

// inForce returns the latest rates of id on day.
func (t *Table) inForce(vendor, id string, day time.Time) (Rates, bool) {
	for _, r := range t.byID[[2]string{vendor, id}] {
		if !day.Before(r.from) {
			return r, true
		}
	}
	return Rates{}, false
}

// Estimate is the list-price cost of usage.
type Estimate struct {
	// USD is the estimate of what the table prices.
	USD decimal.Decimal
	// Priced is false when the table has no price for some of the row's
	// usage — its model's tokens, or a unit other than tokens: USD is then
	// a lower bound, since that part's cost is unknown, not zero.
	Priced bool
	// Version is the table's version.
	Version string
}

var million = decimal.NewFromInt(1_000_000)

// Estimate returns the list-price cost of one canonical usage row of
// vendor on day. Tokens: uncached input at the input rate, cache reads at
// the cached rate, cache writes at theirs where the vendor bills them
// (else as input), output at the output rate, times the tier's factor
// (batch or flex). Other units (images, seconds, calls…) at the vendor's
// unit price, where the table has one.
func (t *Table) Estimate(vendor string, day time.Time, u normalize.Usage) Estimate {
	e := Estimate{Version: t.Version, Priced: true}
	if u.InputTokens != 0 || u.OutputTokens != 0 {
		e.USD, e.Priced = t.tokens(vendor, day, u)
	}
	for _, unit := range Units {
		n := unit.Of(u)
		if n == 0 {
			continue
		}
		p, ok := t.unitPrice(vendor, unit.Name, day)
		if !ok {
			e.Priced = false
			continue
		}
		e.USD = e.USD.Add(decimal.NewFromInt(n).Mul(p))
	}
	return e
}

// unitPrice returns the price of one unit of vendor's usage on day.
func (t *Table) unitPrice(vendor, unit string, day time.Time) (decimal.Decimal, bool) {
	for _, p := range t.UnitPrices {
		if p.Vendor == vendor && p.Unit == unit && !day.Before(p.from) {
			return p.USD, true
		}
	}
	return decimal.Decimal{}, false
}

// tokens returns the cost of a row's tokens; ok is false when the table
// does not price its model.
func (t *Table) tokens(vendor string, day time.Time, u normalize.Usage) (decimal.Decimal, bool) {
	r, ok := t.Lookup(vendor, u.Model, day)
	if !ok {
		return decimal.Decimal{}, false
	}
	rate := func(p *decimal.Decimal) decimal.Decimal {
		if p == nil {
			return r.Input
		}
		return *p
	}
	uncached := u.InputTokens - u.InputCachedTokens - u.InputCacheWrite5m - u.InputCacheWrite1h
	sum := decimal.NewFromInt(uncached).Mul(r.Input).
		Add(decimal.NewFromInt(u.InputCachedTokens).Mul(rate(r.CacheRead))).
		Add(decimal.NewFromInt(u.InputCacheWrite5m).Mul(rate(r.CacheWrite5m))).
		Add(decimal.NewFromInt(u.InputCacheWrite1h).Mul(rate(r.CacheWrite1h))).
		Add(decimal.NewFromInt(u.OutputTokens).Mul(r.Output))
	factor := decimal.NewFromInt(1)
	tiers := t.Tiers[vendor]
	if f, ok := tiers[u.ServiceTier]; ok {
		factor = f
	}
	if f, ok := tiers["batch"]; ok && u.Batch == "true" {
		factor = f
	}
	return sum.Mul(factor).Div(million), true
}
