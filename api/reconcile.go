package api

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/price"
	"github.com/ogma-dev/ogma/pipeline/stream"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// cell is one vendor project's day.
type cell struct{ vendor, day, project string }

func cellOf(d clickhouse.Dims) cell { return cell{d.Get("vendor"), d.Get("day"), d.Get("project")} }

// GetReconciliation sets estimate beside bill per day and project; see the
// proto.
func (s *Server) GetReconciliation(ctx context.Context, req *ogmav1.GetReconciliationRequest) (*ogmav1.Reconciliation, error) {
	q, err := parseWindow(tenantOf(ctx), req.GetStart(), req.GetEnd(), req.GetVendor())
	if err != nil {
		return nil, err
	}
	if s.usage == nil {
		return nil, status.Error(codes.Unavailable, "insights are not served by this process: no ClickHouse configured")
	}
	usage, costs, err := s.usageAndCosts(ctx, q, []string{"vendor", "day", "project"},
		[]string{"vendor", "day", "project", "line_item"}, "reconciliation")
	if err != nil {
		return nil, err
	}
	settled := map[string]string{} // vendor → first day whose bill is not final
	for _, v := range stream.VendorNames() {
		through, ok, err := s.usage.CompleteThrough(ctx, q.Tenant, v, stream.CostReport)
		if err != nil {
			s.log.ErrorContext(ctx, "complete-through query failed", "tenant", q.Tenant, "err", err)
			return nil, queryFailed("reconciliation")
		}
		if ok {
			settled[v] = through.Format(time.DateOnly)
		}
	}
	return reconcile(usage, costs, settled, price.Default().Version), nil
}

// reconcile matches usage estimates and billed costs per cell and names
// the known causes of each gap. costsThrough holds, per vendor, the first
// day whose bill is not final (no entry: none is).
func reconcile(usage []clickhouse.UsageRow, costs []clickhouse.CostRow, costsThrough map[string]string, version string) *ogmav1.Reconciliation {
	type sums struct {
		estimated, billed, withoutTokens decimal.Decimal
		usage, billedAny                 bool
		cached, writes                   int64
		unpriced, restated               bool
	}
	cells := map[cell]*sums{}
	at := func(c cell) *sums {
		if cells[c] == nil {
			cells[c] = &sums{}
		}
		return cells[c]
	}
	for _, r := range usage {
		c := at(cellOf(r.Dims))
		c.usage = true
		c.estimated = c.estimated.Add(r.EstimatedUSD)
		c.cached += r.InputCachedTokens
		c.writes += r.InputCacheWrite5m + r.InputCacheWrite1h
		c.unpriced = c.unpriced || r.Unpriced
	}
	for _, r := range costs {
		c := at(cellOf(r.Dims))
		c.billedAny = true
		c.billed = c.billed.Add(r.Amount)
		c.restated = c.restated || r.Restated
		if !normalize.BillsTokens(r.Dims.Get("vendor"), r.Dims.Get("line_item")) {
			c.withoutTokens = c.withoutTokens.Add(r.Amount)
		}
	}
	out := &ogmav1.Reconciliation{PriceVersion: version}
	keys := slices.SortedFunc(maps.Keys(cells), func(a, b cell) int {
		return strings.Compare(a.day+a.vendor+"\x00"+a.project, b.day+b.vendor+"\x00"+b.project)
	})
	for _, k := range keys {
		c := cells[k]
		gap := c.billed.Sub(c.estimated)
		d := &ogmav1.ReconciliationDay{Day: k.day, Vendor: k.vendor, Project: k.project, EstimatedUsd: c.estimated.String(),
			BilledUsd: c.billed.String(), GapUsd: gap.String(), BilledWithoutTokensUsd: c.withoutTokens.String(), Causes: []string{}}
		if !gap.IsZero() {
			for _, cause := range []struct {
				name string
				ok   bool
			}{
				{"cached_input", c.cached > 0},
				{"cache_writes", c.writes > 0},
				{"unpriced_model", c.unpriced},
				{"cost_not_settled", costsThrough[k.vendor] == "" || k.day >= costsThrough[k.vendor]},
				{"line_items_without_tokens", !c.withoutTokens.IsZero()},
				{"restated", c.restated},
				{"no_usage", !c.usage},
				{"no_cost", !c.billedAny},
			} {
				if cause.ok {
					d.Causes = append(d.Causes, cause.name)
				}
			}
		}
		out.Days = append(out.Days, d)
	}
	return out
}
