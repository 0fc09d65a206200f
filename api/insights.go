package api

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ogma-dev/ogma/api/forecast"
	"github.com/ogma-dev/ogma/pipeline/stream"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// GetForecast projects each vendor's billed spend to the end of the month;
// see the proto.
func (s *Server) GetForecast(ctx context.Context, req *ogmav1.GetForecastRequest) (*ogmav1.Forecast, error) {
	now := s.now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if m := req.GetMonth(); m != "" {
		t, err := time.Parse("2006-01", m)
		if err != nil {
			return nil, badRequest("month %q: want YYYY-MM", m)
		}
		month = t
	}
	if s.usage == nil {
		return nil, status.Error(codes.Unavailable, "insights are not served by this process: no ClickHouse configured")
	}
	end := month.AddDate(0, 1, 0)
	upTo := end
	if tomorrow := now.Truncate(24*time.Hour).AddDate(0, 0, 1); tomorrow.Before(upTo) {
		upTo = tomorrow
	}
	tenant := tenantOf(ctx)
	rows, err := s.usage.Costs(ctx, clickhouse.CostQuery{Tenant: tenant, Start: month.AddDate(0, 0, -forecast.Window),
		End: upTo, GroupBy: []string{"vendor", "day"}})
	if err != nil {
		s.log.ErrorContext(ctx, "costs query failed", "tenant", tenant, "err", err)
		return nil, queryFailed("forecast")
	}
	daily := map[string]map[time.Time]decimal.Decimal{}
	for _, r := range rows {
		d, err := time.Parse(time.DateOnly, r.Dims.Get("day"))
		if err != nil {
			continue
		}
		if daily[r.Dims.Get("vendor")] == nil {
			daily[r.Dims.Get("vendor")] = map[time.Time]decimal.Decimal{}
		}
		daily[r.Dims.Get("vendor")][d] = r.Amount
	}
	out := &ogmav1.Forecast{Month: month.Format("2006-01")}
	for _, v := range stream.VendorNames() {
		if days, ok := daily[v]; ok {
			out.Vendors = append(out.Vendors, vendorForecast(v, days, month, end))
		}
	}
	return out, nil
}

// vendorForecast projects one vendor's month from its billed days: the
// history runs to the last billed day, missing days before it count 0.
func vendorForecast(vendor string, days map[time.Time]decimal.Decimal, month, end time.Time) *ogmav1.VendorForecast {
	var first, through time.Time
	for d := range days {
		if first.IsZero() || d.Before(first) {
			first = d
		}
		if d.After(through) {
			through = d
		}
	}
	spent := decimal.Zero
	var series []forecast.Day
	for d := first; !d.After(through); d = d.AddDate(0, 0, 1) {
		a := days[d]
		if !d.Before(month) {
			spent = spent.Add(a)
		}
		series = append(series, forecast.Day{Date: d, Spend: a.InexactFloat64()})
	}
	vf := &ogmav1.VendorForecast{Vendor: vendor, Method: "none", Through: through.Format(time.DateOnly),
		SpentToDate: spent.String(), ForecastTotal: spent.StringFixed(2), Low: spent.StringFixed(2), High: spent.StringFixed(2)}
	h := int(end.Sub(through.AddDate(0, 0, 1)) / (24 * time.Hour))
	if h <= 0 {
		return vf // the month is billed whole
	}
	f, err := forecast.Forecast(series, h)
	if err != nil {
		return vf // too little history: what is billed, no projection
	}
	add := func(x float64) string { return spent.Add(decimal.NewFromFloat(x)).StringFixed(2) }
	vf.Method, vf.DaysFitted = forecast.Method, int32(f.Fitted)
	vf.ForecastTotal, vf.Low, vf.High = add(f.Total), add(f.Low), add(f.High)
	return vf
}

// GetModelMix reports each vendor × model's share of a period's tokens and
// estimated cost beside the period before; see the proto.
func (s *Server) GetModelMix(ctx context.Context, req *ogmav1.GetModelMixRequest) (*ogmav1.ModelMix, error) {
	q, err := parseWindow(tenantOf(ctx), req.GetStart(), req.GetEnd(), req.GetVendor())
	if err != nil {
		return nil, err
	}
	if s.usage == nil {
		return nil, status.Error(codes.Unavailable, "insights are not served by this process: no ClickHouse configured")
	}
	q.GroupBy = []string{"vendor", "model"}
	prev := q
	prev.Start, prev.End = q.Start.Add(-q.End.Sub(q.Start)), q.Start
	now, err := s.usage.Usage(ctx, q)
	if err == nil {
		var before []clickhouse.UsageRow
		if before, err = s.usage.Usage(ctx, prev); err == nil {
			return &ogmav1.ModelMix{PreviousStart: prev.Start.Format(time.DateOnly), PreviousEnd: prev.End.Format(time.DateOnly),
				Models: modelShares(now, before)}, nil
		}
	}
	s.log.ErrorContext(ctx, "usage query failed", "tenant", q.Tenant, "err", err)
	return nil, queryFailed("model mix")
}

// modelShares turns two periods' usage by vendor × model (settled and
// open rows alike) into shares, largest shift of token share first.
func modelShares(now, before []clickhouse.UsageRow) []*ogmav1.ModelShare {
	type sums struct {
		tokens   int64
		cost     decimal.Decimal
		unpriced bool
	}
	total := func(rows []clickhouse.UsageRow) (map[[2]string]*sums, int64, decimal.Decimal) {
		by := map[[2]string]*sums{}
		var tokens int64
		cost := decimal.Zero
		for _, r := range rows {
			k := [2]string{r.Dims.Get("vendor"), r.Dims.Get("model")}
			if by[k] == nil {
				by[k] = &sums{cost: decimal.Zero}
			}
			t := r.InputTokens + r.OutputTokens
			by[k].tokens += t
			by[k].cost = by[k].cost.Add(r.EstimatedUSD)
			by[k].unpriced = by[k].unpriced || r.Unpriced
			tokens += t
			cost = cost.Add(r.EstimatedUSD)
		}
		return by, tokens, cost
	}
	share := func(part, whole float64) float64 {
		if whole == 0 {
			return 0
		}
		return part / whole
	}
	cur, curTokens, curCost := total(now)
	old, oldTokens, oldCost := total(before)
	keys := map[[2]string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range old {
		keys[k] = true
	}
	var out []*ogmav1.ModelShare
	for k := range keys {
		c, o := cur[k], old[k]
		if c == nil {
			c = &sums{cost: decimal.Zero}
		}
		if o == nil {
			o = &sums{cost: decimal.Zero}
		}
		m := &ogmav1.ModelShare{Vendor: k[0], Model: k[1], Tokens: c.tokens, EstimatedCostUsd: c.cost.String(), Unpriced: c.unpriced,
			TokenShare: share(float64(c.tokens), float64(curTokens)), CostShare: share(c.cost.InexactFloat64(), curCost.InexactFloat64()),
			PreviousTokenShare: share(float64(o.tokens), float64(oldTokens)), PreviousCostShare: share(o.cost.InexactFloat64(), oldCost.InexactFloat64())}
		m.TokenShift = m.TokenShare - m.PreviousTokenShare
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *ogmav1.ModelShare) int {
		if c := cmp.Compare(math.Abs(b.TokenShift), math.Abs(a.TokenShift)); c != 0 {
			return c
		}
		return cmp.Compare(a.Vendor+"/"+a.Model, b.Vendor+"/"+b.Model)
	})
	return out
}

// GetProjects attributes each project's spend; see the proto.
func (s *Server) GetProjects(ctx context.Context, req *ogmav1.GetProjectsRequest) (*ogmav1.Projects, error) {
	q, err := parseWindow(tenantOf(ctx), req.GetStart(), req.GetEnd(), req.GetVendor())
	if err != nil {
		return nil, err
	}
	if s.usage == nil || s.identity == nil {
		return nil, status.Error(codes.Unavailable, "insights are not served by this process: no ClickHouse configured")
	}
	usage, costs, err := s.usageAndCosts(ctx, q, []string{"vendor", "project", "person"}, []string{"vendor", "project"}, "projects")
	if err != nil {
		return nil, err
	}
	names, err := s.identity.Names(ctx, q.Tenant, "project")
	if err != nil {
		s.log.ErrorContext(ctx, "names query failed", "tenant", q.Tenant, "err", err)
		return nil, queryFailed("projects")
	}
	return projects(q.Tenant, usage, costs, names), nil
}

// maxProjectPeople bounds the people listed per project.
const maxProjectPeople = 10

func projects(tenant string, usage []clickhouse.UsageRow, costs []clickhouse.CostRow, names map[[2]string]string) *ogmav1.Projects {
	type project struct {
		out        *ogmav1.ProjectSpend
		billed     decimal.Decimal
		estimated  decimal.Decimal
		unassigned decimal.Decimal
		people     map[string]decimal.Decimal
	}
	byKey := map[[2]string]*project{}
	at := func(vendor, id string) *project {
		k := [2]string{vendor, id}
		if byKey[k] == nil {
			byKey[k] = &project{out: &ogmav1.ProjectSpend{Vendor: vendor, Project: id, Name: names[k]}, people: map[string]decimal.Decimal{}}
		}
		return byKey[k]
	}
	var whole decimal.Decimal
	for _, c := range costs {
		p := at(c.Dims.Get("vendor"), c.Dims.Get("project"))
		p.billed = p.billed.Add(c.Amount)
		whole = whole.Add(c.Amount)
	}
	for _, r := range usage {
		p := at(r.Dims.Get("vendor"), r.Dims.Get("project"))
		p.estimated = p.estimated.Add(r.EstimatedUSD)
		p.out.Unpriced = p.out.Unpriced || r.Unpriced
		p.out.InputTotal += r.InputTokens
		p.out.Output += r.OutputTokens
		if email := r.Dims.Get("person"); email != "" {
			p.people[email] = p.people[email].Add(r.EstimatedUSD)
		} else {
			p.unassigned = p.unassigned.Add(r.EstimatedUSD)
		}
	}
	// Largest bill first, then largest estimate, by the decimals themselves.
	ordered := slices.SortedFunc(maps.Values(byKey), func(a, b *project) int {
		return cmp.Or(b.billed.Cmp(a.billed), b.estimated.Cmp(a.estimated),
			strings.Compare(a.out.Vendor+a.out.Project, b.out.Vendor+b.out.Project))
	})
	out := &ogmav1.Projects{Projects: make([]*ogmav1.ProjectSpend, 0, len(ordered))}
	for _, p := range ordered {
		p.out.BilledUsd, p.out.EstimatedCostUsd = p.billed.String(), p.estimated.String()
		if whole.IsPositive() {
			p.out.BilledShare, _ = p.billed.Div(whole).Float64()
		}
		if p.estimated.IsPositive() {
			p.out.UnattributedShare, _ = p.unassigned.Div(p.estimated).Float64()
		}
		emails := slices.SortedFunc(maps.Keys(p.people), func(a, b string) int {
			return cmp.Or(p.people[b].Cmp(p.people[a]), strings.Compare(a, b))
		})
		for _, email := range emails[:min(len(emails), maxProjectPeople)] {
			person := &ogmav1.ProjectPerson{Person: PersonID(tenant, email), Email: email, EstimatedCostUsd: p.people[email].String()}
			if p.estimated.IsPositive() {
				person.Share, _ = p.people[email].Div(p.estimated).Float64()
			}
			p.out.People = append(p.out.People, person)
		}
		out.Projects = append(out.Projects, p.out)
	}
	return out
}
