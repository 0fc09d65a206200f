package api

import (
	"context"
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
		d, err := time.Parse(time.DateOnly, r.Dims["day"])
		if err != nil {
			continue
		}
		if daily[r.Dims["vendor"]] == nil {
			daily[r.Dims["vendor"]] = map[time.Time]decimal.Decimal{}
		}
		daily[r.Dims["vendor"]][d] = r.Amount
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
