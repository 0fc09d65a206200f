package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ogma-dev/ogma/pipeline/stream"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// UsageReader answers usage and billed cost queries; *clickhouse.Store is
// one.
type UsageReader interface {
	Usage(ctx context.Context, q clickhouse.UsageQuery) ([]clickhouse.UsageRow, error)
	UsageThrough(ctx context.Context, q clickhouse.UsageQuery) ([]clickhouse.UsageRow, time.Time, bool, error)
	CompleteThrough(ctx context.Context, tenant, vendor string, kind stream.Kind) (time.Time, bool, error)
	UnmappedKeys(ctx context.Context, q clickhouse.UsageQuery) ([]clickhouse.UnmappedKey, time.Time, bool, error)
	Costs(ctx context.Context, q clickhouse.CostQuery) ([]clickhouse.CostRow, error)
}

// The group_by dimensions of usage and of costs, in the order an error
// names them.
var (
	usageDims = []string{"day", "week", "month", "vendor", "model", "user", "project", "api_key", "person", "usage_type", "attribution"}
	costDims  = []string{"day", "month", "project", "line_item", "vendor"}
)

func badRequest(format string, a ...any) error {
	return codeError(codes.InvalidArgument, "malformed_request", fmt.Sprintf(format, a...))
}

// parseUsage checks a usage request and names what is wrong with it.
func parseUsage(tenant string, req *ogmav1.GetUsageRequest) (clickhouse.UsageQuery, error) {
	q, err := parseWindow(tenant, req.GetStart(), req.GetEnd(), req.GetVendor())
	if err != nil {
		return q, err
	}
	if q.GroupBy, err = parseGroupBy(req.GetGroupBy(), usageDims); err != nil {
		return q, err
	}
	for dim, v := range map[string]string{"model": req.GetModel(), "user": req.GetUser(), "project": req.GetProject(),
		"api_key": req.GetApiKey(), "person": req.GetPerson(), "usage_type": req.GetUsageType(), "attribution": req.GetAttribution()} {
		if v == "" {
			continue
		}
		if q.Filters == nil {
			q.Filters = map[string][]string{}
		}
		for value := range strings.SplitSeq(v, ",") {
			if value = strings.TrimSpace(value); value == "" || len(value) > maxFilterValue {
				return q, badRequest("%s: each value must be 1 to %d characters", dim, maxFilterValue)
			}
			q.Filters[dim] = append(q.Filters[dim], value)
		}
	}
	q.Offset, q.Limit, err = parsePage(req.GetPageSize(), req.GetPageToken(), usageQuery(q))
	return q, err
}

// maxFilterValue bounds a filter's value: ids and model names are short.
const maxFilterValue = 256

// parseGroupBy reads a comma-separated group_by of the known dimensions.
func parseGroupBy(groupBy string, known []string) ([]string, error) {
	var out []string
	for d := range strings.SplitSeq(groupBy, ",") {
		d = strings.TrimSpace(d)
		switch {
		case d == "":
		case !slices.Contains(known, d):
			return nil, badRequest("group_by: unknown dimension %q; want any of %s", d, strings.Join(known, ", "))
		case slices.Contains(out, d):
			return nil, badRequest("group_by: %q given twice", d)
		default:
			out = append(out, d)
		}
	}
	return out, nil
}

// GetCosts sums billed cost; see the proto.
func (s *Server) GetCosts(ctx context.Context, req *ogmav1.GetCostsRequest) (*ogmav1.CostReport, error) {
	w, err := parseWindow(tenantOf(ctx), req.GetStart(), req.GetEnd(), req.GetVendor())
	if err != nil {
		return nil, err
	}
	q := clickhouse.CostQuery{Tenant: w.Tenant, Start: w.Start, End: w.End, Vendor: w.Vendor}
	if q.GroupBy, err = parseGroupBy(req.GetGroupBy(), costDims); err != nil {
		return nil, err
	}
	if s.usage == nil {
		return nil, status.Error(codes.Unavailable, "costs are not served by this process: no ClickHouse configured")
	}
	rows, err := s.usage.Costs(ctx, q)
	if err != nil {
		s.log.ErrorContext(ctx, "costs query failed", "tenant", q.Tenant, "err", err)
		return nil, queryFailed("billed cost")
	}
	out := &ogmav1.CostReport{Rows: make([]*ogmav1.CostRow, 0, len(rows))}
	for _, r := range rows {
		row := &ogmav1.CostRow{Amount: r.Amount.String(), Currency: r.Currency, Restated: r.Restated}
		set := dimSetter(r.Dims)
		set("day", &row.Day)
		set("month", &row.Month)
		set("project", &row.Project)
		set("line_item", &row.LineItem)
		set("vendor", &row.Vendor)
		out.Rows = append(out.Rows, row)
	}
	return out, nil
}

// dimSetter returns a function that sets an optional field to a group's
// value of a dimension, when the query grouped by it.
func dimSetter(dims clickhouse.Dims) func(dim string, field **string) {
	return func(dim string, field **string) {
		if v, ok := dims.Lookup(dim); ok {
			*field = &v
		}
	}
}

// parseWindow checks the days and vendor of a usage query.
func parseWindow(tenant, start, end, vendor string) (clickhouse.UsageQuery, error) {
	q := clickhouse.UsageQuery{Tenant: tenant}
	day := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, badRequest("%s is required: an RFC 3339 date such as 2026-11-01", name)
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, badRequest("%s %q is not an RFC 3339 date (YYYY-MM-DD)", name, v)
		}
		return t, nil
	}
	var err error
	if q.Start, err = day("start", start); err != nil {
		return q, err
	}
	if q.End, err = day("end", end); err != nil {
		return q, err
	}
	if !q.End.After(q.Start) {
		return q, badRequest("end %s must be after start %s (start is inclusive, end exclusive)", end, start)
	}
	if q.End.Sub(q.Start) > 366*24*time.Hour {
		return q, badRequest("the window from %s to %s is longer than 366 days", start, end)
	}
	if vendor == "" || vendor == "all" {
		return q, nil
	}
	if _, ok := stream.VendorOf(vendor); !ok {
		return q, badRequest("vendor %q: want %s or all", vendor, strings.Join(stream.VendorNames(), ", "))
	}
	q.Vendor = vendor
	return q, nil
}

// GetUsage returns the tenant's token sums; see the proto.
func (s *Server) GetUsage(ctx context.Context, req *ogmav1.GetUsageRequest) (*ogmav1.UsageReport, error) {
	q, err := parseUsage(tenantOf(ctx), req)
	if err != nil {
		return nil, err
	}
	return s.report(ctx, q)
}

// usageAndCosts reads the usage of q grouped by usageBy, and the billed
// cost of the same window and vendor grouped by costBy; what names the
// answer when a query fails.
func (s *Server) usageAndCosts(ctx context.Context, q clickhouse.UsageQuery, usageBy, costBy []string, what string) (
	[]clickhouse.UsageRow, []clickhouse.CostRow, error) {
	q.GroupBy = usageBy
	usage, err := s.usage.Usage(ctx, q)
	if err != nil {
		s.log.ErrorContext(ctx, "usage query failed", "tenant", q.Tenant, "err", err)
		return nil, nil, queryFailed(what)
	}
	costs, err := s.usage.Costs(ctx, clickhouse.CostQuery{Tenant: q.Tenant, Start: q.Start, End: q.End, Vendor: q.Vendor, GroupBy: costBy})
	if err != nil {
		s.log.ErrorContext(ctx, "costs query failed", "tenant", q.Tenant, "err", err)
		return nil, nil, queryFailed(what)
	}
	return usage, costs, nil
}

// completeThrough is an answer's complete_through (RFC 3339): nil unless
// ok, before any usage stream asked about has settled a bucket.
func completeThrough(through time.Time, ok bool) *string {
	if !ok {
		return nil
	}
	return proto.String(through.UTC().Format(time.RFC3339))
}

// report runs a usage query and shapes its rows.
func (s *Server) report(ctx context.Context, q clickhouse.UsageQuery) (*ogmav1.UsageReport, error) {
	if s.usage == nil {
		return nil, status.Error(codes.Unavailable, "usage is not served by this process: no ClickHouse configured")
	}
	out := &ogmav1.UsageReport{}
	rows, through, complete, err := s.usage.UsageThrough(ctx, q)
	if err != nil {
		s.log.ErrorContext(ctx, "usage query failed", "tenant", q.Tenant, "err", err)
		return nil, queryFailed("usage")
	}
	out.CompleteThrough = completeThrough(through, complete)
	if q.Limit > 0 && len(rows) == q.Limit {
		rows = rows[:q.Limit-1]
		out.NextPageToken = pageToken(usageQuery(q), q.Offset+len(rows), q.Limit)
	}
	out.Rows = make([]*ogmav1.UsageRow, len(rows))
	all := make([]ogmav1.UsageRow, len(rows)) // one allocation, not one a row
	people := map[string]string{}             // each person's id, once: a digest
	for i, r := range rows {
		row := &all[i]
		out.Rows[i] = row
		*row = ogmav1.UsageRow{InputTokens: r.InputTokens, InputCachedTokens: r.InputCachedTokens,
			OutputTokens: r.OutputTokens, NumModelRequests: r.NumModelRequests, Provisional: r.Provisional,
			InputCacheWrite_5M: r.InputCacheWrite5m, InputCacheWrite_1H: r.InputCacheWrite1h,
			EstimatedCostUsd: r.EstimatedUSD.String(), Unpriced: r.Unpriced, PriceVersion: r.PriceVersion,
			InputTotal: r.InputTokens, InputCacheRead: r.InputCachedTokens, Output: r.OutputTokens, Requests: r.NumModelRequests,
			InputUncached: r.InputTokens - r.InputCachedTokens - r.InputCacheWrite5m - r.InputCacheWrite1h,
			Images:        r.Images, Characters: r.Characters, Seconds: r.Seconds, Bytes: r.Bytes, Sessions: r.Sessions, Calls: r.Calls}
		for d, v := range r.Dims.All() { // a row has the few it was grouped by
			switch d {
			case "day":
				row.Day = &v
			case "week":
				row.Week = &v
			case "month":
				row.Month = &v
			case "vendor":
				row.Vendor = &v
			case "model":
				row.Model = &v
			case "user":
				row.User = &v
			case "project":
				row.Project = &v
			case "api_key":
				row.ApiKey = &v
			case "attribution":
				row.Attribution = &v
			case "usage_type":
				row.UsageType = &v
			case "person":
				id, ok := people[v]
				if !ok && v != "" {
					id = PersonID(q.Tenant, v)
					people[v] = id
				}
				row.Person = &id
			}
		}
	}
	return out, nil
}
