package clickhouse

import (
	"context"
	"fmt"
	"slices"

	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/shopspring/decimal"
)

// projected is one fact key as a projection holds it, or as recomputed
// from the ledger: its units (usage) or amount (costs), and the seq of the
// revision it is.
type projected struct {
	stream string
	cost   bool // a cost report's, not a usage report's
	counts counts
	amount decimal.Decimal
	seq    uint64
}

// counts are a usage row's count columns, in countColumns' order.
type counts [12]int64

// countColumns are the usage tables' count columns.
const countColumns = "input_tokens, input_cached_tokens, input_cache_write_5m, input_cache_write_1h, output_tokens, num_model_requests, " + unitColumns

func countsOf(u normalize.Usage) counts {
	return counts{u.InputTokens, u.InputCachedTokens, u.InputCacheWrite5m, u.InputCacheWrite1h, u.OutputTokens, u.NumModelRequests,
		u.Images, u.Characters, u.Seconds, u.Bytes, u.Sessions, u.Calls}
}

func (p projected) same(q projected) bool {
	return p.stream == q.stream && p.counts == q.counts && p.amount.Equal(q.amount)
}

// CheckProjections recomputes tenant's usage and cost projections from
// the ledger — the latest revision of each fact key, its data parsed as
// the sink parses it — and returns each key whose projection differs
// (none when the projections are true to the ledger; the first
// maxProblems, then their count). The sink writes the
// ledger and the projections at once, so a batch in flight shows on one
// side first: keys with a revision past the older side's newest seq are
// left out of the comparison.
func (s *Store) CheckProjections(ctx context.Context, tenant string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	ledger, err := s.recompute(ctx, tenant)
	if err != nil {
		return nil, err
	}
	proj, err := s.projections(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var ledgerMax, projMax uint64
	for _, p := range ledger {
		ledgerMax = max(ledgerMax, p.seq)
	}
	for _, p := range proj {
		projMax = max(projMax, p.seq)
	}
	settled := min(ledgerMax, projMax)
	var problems []string
	for key, l := range ledger {
		p, ok := proj[key]
		switch {
		case l.seq > settled || ok && p.seq > settled:
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %s: in the ledger (seq %d), not in the projection", l.stream, key, l.seq))
		case !l.same(p) || l.seq != p.seq:
			problems = append(problems, fmt.Sprintf("%s %s: the projection holds %s (seq %d), the ledger %s (seq %d)",
				l.stream, key, p.units(), p.seq, l.units(), l.seq))
		}
	}
	for key, p := range proj {
		if _, ok := ledger[key]; !ok && p.seq <= settled {
			problems = append(problems, fmt.Sprintf("%s %s: in the projection (seq %d), not in the ledger", p.stream, key, p.seq))
		}
	}
	slices.Sort(problems)
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more keys", len(problems)-maxProblems))
	}
	return problems, nil
}

// maxProblems bounds the keys CheckProjections names: past a few, the
// rest says no more than their count.
const maxProblems = 20

func (p projected) units() string {
	if p.cost {
		return p.amount.String()
	}
	return fmt.Sprintf("%s %v", countColumns, p.counts)
}

// recompute reads the latest revision of each usage and cost fact key of
// tenant from the ledger.
func (s *Store) recompute(ctx context.Context, tenant string) (map[string]projected, error) {
	var reports []string
	for _, vendor := range stream.VendorNames() {
		for _, spec := range stream.Of(vendor) {
			if spec.Projected() {
				reports = append(reports, spec.Name)
			}
		}
	}
	rows, err := s.conn.Query(ctx, `SELECT vendor, stream, key, argMax(data, seq), max(seq) FROM events
		WHERE tenant = ? AND kind = 'fact' AND has(?, stream)
		GROUP BY vendor, stream, key`, tenant, reports)
	if err != nil {
		return nil, fmt.Errorf("recompute projections: %w", err)
	}
	defer rows.Close()
	out := map[string]projected{}
	for rows.Next() {
		var p projected
		var vendor, key, data string
		if err := rows.Scan(&vendor, &p.stream, &key, &data, &p.seq); err != nil {
			return nil, fmt.Errorf("recompute projections: %w", err)
		}
		spec, ok := stream.Lookup(vendor, p.stream)
		if data == "" || !ok || !spec.Projected() {
			continue // erased (its projection row stands as written), or another vendor's stream of that name
		}
		if p.cost = spec.Kind == stream.CostReport; p.cost {
			c, err := normalize.CostColumns(vendor, []byte(data))
			if err != nil {
				return nil, fmt.Errorf("recompute projections: cost fact %s: %w", key, err)
			}
			p.amount = c.Amount
		} else {
			u, err := normalize.UsageColumns(vendor, []byte(data))
			if err != nil {
				return nil, fmt.Errorf("recompute projections: usage fact %s: %w", key, err)
			}
			p.counts = countsOf(u)
		}
		out[p.stream+" "+key] = p
	}
	return out, rows.Err()
}

// projections reads tenant's usage and cost projections, one entry per
// fact key.
func (s *Store) projections(ctx context.Context, tenant string) (map[string]projected, error) {
	out := map[string]projected{}
	rows, err := s.conn.Query(ctx, `SELECT stream, key, `+countColumns+`, seq FROM usage FINAL WHERE tenant = ?`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read usage projection: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p projected
		var key string
		dest := []any{&p.stream, &key}
		for i := range p.counts {
			dest = append(dest, &p.counts[i])
		}
		if err := rows.Scan(append(dest, &p.seq)...); err != nil {
			return nil, fmt.Errorf("read usage projection: %w", err)
		}
		out[p.stream+" "+key] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read usage projection: %w", err)
	}
	costs, err := s.conn.Query(ctx, `SELECT stream, key, toString(amount), seq FROM costs FINAL WHERE tenant = ?`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read costs projection: %w", err)
	}
	defer costs.Close()
	for costs.Next() {
		p := projected{cost: true}
		var key, amount string
		if err := costs.Scan(&p.stream, &key, &amount, &p.seq); err != nil {
			return nil, fmt.Errorf("read costs projection: %w", err)
		}
		if p.amount, err = decimal.NewFromString(amount); err != nil {
			return nil, fmt.Errorf("read costs projection: %s: %w", key, err)
		}
		out[p.stream+" "+key] = p
	}
	return out, costs.Err()
}
