package api

import (
	"maps"
	"slices"

	"github.com/shopspring/decimal"

	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// personUsage sums one person's usage rows.
type personUsage struct {
	total      vendorUsage
	unpriced   bool
	lastActive string
	projects   map[string]bool
	byAttrib   map[string]int64 // tokens
	vendors    map[string]*vendorUsage
}

// vendorUsage is usage of one vendor (or of all).
type vendorUsage struct {
	input, output, requests int64
	estimated, billed       decimal.Decimal
}

func (v *vendorUsage) add(r clickhouse.UsageRow) {
	v.input += r.InputTokens
	v.output += r.OutputTokens
	v.requests += r.NumModelRequests
	v.estimated = v.estimated.Add(r.EstimatedUSD)
}

// attributeUsage sums usage rows grouped by person, vendor, day, project
// and attribution per person (by email), and shares each vendor's billed
// cost of a day and project among the people whose usage it holds: by
// estimated cost, or by tokens where nothing in it is priced. Usage of no
// one keeps its share: what is billed for unattributed usage is not
// spread over the people.
func attributeUsage(rows []clickhouse.UsageRow, costs []clickhouse.CostRow) map[string]*personUsage {
	type whole struct {
		estimated decimal.Decimal
		tokens    int64
	}
	wholes := map[cell]*whole{}
	for _, r := range rows {
		c := cellOf(r.Dims)
		w := wholes[c]
		if w == nil {
			w = &whole{}
			wholes[c] = w
		}
		w.estimated = w.estimated.Add(r.EstimatedUSD)
		w.tokens += r.InputTokens + r.OutputTokens
	}
	billed := map[cell]decimal.Decimal{}
	for _, c := range costs {
		billed[cellOf(c.Dims)] = billed[cellOf(c.Dims)].Add(c.Amount)
	}
	out := map[string]*personUsage{}
	for _, r := range rows {
		email := r.Dims.Get("person")
		if email == "" {
			continue
		}
		p := out[email]
		if p == nil {
			p = &personUsage{projects: map[string]bool{}, byAttrib: map[string]int64{}, vendors: map[string]*vendorUsage{}}
			out[email] = p
		}
		v := p.vendors[r.Dims.Get("vendor")]
		if v == nil {
			v = &vendorUsage{}
			p.vendors[r.Dims.Get("vendor")] = v
		}
		p.total.add(r)
		v.add(r)
		p.unpriced = p.unpriced || r.Unpriced
		p.lastActive = max(p.lastActive, r.Dims.Get("day"))
		p.projects[r.Dims.Get("project")] = true
		p.byAttrib[r.Dims.Get("attribution")] += r.InputTokens + r.OutputTokens
		c := cellOf(r.Dims)
		b, w := billed[c], wholes[c]
		var share decimal.Decimal
		switch {
		case b.IsZero():
		case w.estimated.IsPositive():
			share = b.Mul(r.EstimatedUSD).Div(w.estimated)
		case w.tokens > 0:
			share = b.Mul(decimal.NewFromInt(r.InputTokens + r.OutputTokens)).Div(decimal.NewFromInt(w.tokens))
		}
		p.total.billed, v.billed = p.total.billed.Add(share), v.billed.Add(share)
	}
	return out
}

// fill sets p's usage fields.
func (u *personUsage) fill(p *ogmav1.Person) {
	p.InputTotal, p.Output, p.Requests = u.total.input, u.total.output, u.total.requests
	p.EstimatedCostUsd, p.Unpriced = u.total.estimated.String(), u.unpriced
	p.BilledAttributedUsd = u.total.billed.Round(9).String()
	if u.lastActive != "" {
		p.LastActive = &u.lastActive
	}
	p.Projects = slices.DeleteFunc(slices.Sorted(maps.Keys(u.projects)), func(s string) bool { return s == "" })
	if tokens := u.total.input + u.total.output; tokens > 0 {
		p.AttributionMix = map[string]float64{}
		for a, n := range u.byAttrib {
			p.AttributionMix[a] = float64(n) / float64(tokens)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(u.vendors)) {
		v := u.vendors[name]
		p.Vendors = append(p.Vendors, &ogmav1.PersonVendor{Vendor: name, InputTotal: v.input, Output: v.output, Requests: v.requests,
			EstimatedCostUsd: v.estimated.String(), BilledAttributedUsd: v.billed.Round(9).String()})
	}
}
