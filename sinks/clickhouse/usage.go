package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// UsageDims are the dimensions usage can be grouped by, with their columns.
var UsageDims = map[string]string{
	"day":     "toString(day)",
	"week":    "toString(toMonday(day))",
	"month":   "toString(toStartOfMonth(day))",
	"vendor":  "vendor",
	"model":   "model",
	"user":    "user_id",
	"project": "project_id",
	"api_key": "api_key_id",
	// The person (lower-cased email) and attribution state, resolved when
	// read: see the usage_attributed view.
	"person":      "person",
	"attribution": "attribution",
}

// UsageQuery asks for token sums of one tenant.
type UsageQuery struct {
	Tenant string
	// Start is inclusive, End exclusive; both are UTC days.
	Start, End time.Time
	// GroupBy holds keys of UsageDims, in output order.
	GroupBy []string
	// Vendor narrows to one vendor; "" is all.
	Vendor string
	// Unattributed keeps only rows no vendor user or link attributes:
	// key_owner and unmapped.
	Unattributed bool
}

// UsageRow is one group's sums.
type UsageRow struct {
	// Dims holds the group's value of each GroupBy dimension.
	Dims                                                           map[string]string
	InputTokens, InputCachedTokens, OutputTokens, NumModelRequests int64
	// InputCacheWrite5m and InputCacheWrite1h are the cache writes (see
	// normalize.Usage).
	InputCacheWrite5m, InputCacheWrite1h int64
	// EstimatedUSD is the list-price estimate of the group's tokens; Unpriced
	// says some of its rows name a model the price table does not price, so
	// the estimate is a lower bound. PriceVersion is the table's version
	// (the latest, if rows were estimated under several).
	EstimatedUSD decimal.Decimal
	Unpriced     bool
	PriceVersion string
	// Provisional rows come from buckets not settled yet.
	Provisional bool
}

// Usage sums settled usage facts of the primary group set (the latest
// revision of each), then open buckets as last fetched, flagged
// provisional. Rows are attributed to people as the identity tables stand
// now.
func (s *Store) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	var cols []string
	for _, d := range q.GroupBy {
		c, ok := UsageDims[d]
		if !ok {
			return nil, fmt.Errorf("usage: unknown dimension %q", d)
		}
		cols = append(cols, c)
	}
	sel, group := "", ""
	if len(cols) > 0 {
		sel = strings.Join(cols, ", ") + ", "
		group = " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
	}
	sums := "sum(input_tokens), sum(input_cached_tokens), sum(output_tokens), sum(num_model_requests), " +
		"sum(input_cache_write_5m), sum(input_cache_write_1h), sum(estimated_usd), min(priced), max(price_version)"
	// Dates bind as text: 18.16 does not compare a Date with a DateTime.
	vendor, args := "", []any{q.Tenant, q.Start.Format(time.DateOnly), q.End.Format(time.DateOnly)}
	if q.Vendor != "" {
		vendor, args = " AND vendor = ?", append(args, q.Vendor)
	}
	if q.Unattributed {
		vendor += " AND attribution != 'user'"
	}
	// People are resolved (three joins) only when asked for.
	settledFrom, openFrom := "usage FINAL", "usage_provisional"
	if q.Unattributed || slices.Contains(q.GroupBy, "person") || slices.Contains(q.GroupBy, "attribution") {
		settledFrom, openFrom = "usage_attributed", "usage_provisional_attributed"
	}
	settled := "SELECT " + sel + sums + " FROM " + settledFrom + " WHERE tenant = ? AND day >= toDate(?) AND day < toDate(?) AND primary_set = 1" + vendor + group
	out, err := s.usageRows(ctx, settled, args, len(cols), q.GroupBy, false)
	if err != nil {
		return nil, err
	}
	latest := "SELECT vendor, stream, bucket_start, max(version) FROM usage_provisional WHERE tenant = ? GROUP BY vendor, stream, bucket_start"
	open := "SELECT " + sel + sums + " FROM " + openFrom + " WHERE tenant = ? AND day >= toDate(?) AND day < toDate(?) AND kind = 0" + vendor +
		" AND (vendor, stream, bucket_start, version) IN (" + latest + ")" + group
	prov, err := s.usageRows(ctx, open, append(args, q.Tenant), len(cols), q.GroupBy, true)
	if err != nil {
		return nil, err
	}
	return append(out, prov...), nil
}

func (s *Store) usageRows(ctx context.Context, query string, args []any, ncols int, dims []string, provisional bool) ([]UsageRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("usage query: %w", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		vals := make([]string, ncols)
		var r UsageRow
		dest := make([]any, 0, ncols+9)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		var priced uint8
		dest = append(dest, &r.InputTokens, &r.InputCachedTokens, &r.OutputTokens, &r.NumModelRequests,
			&r.InputCacheWrite5m, &r.InputCacheWrite1h, &r.EstimatedUSD, &priced, &r.PriceVersion)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("usage query: %w", err)
		}
		r.Unpriced = priced == 0
		if r.NumModelRequests == 0 && r.InputTokens == 0 && r.OutputTokens == 0 && ncols == 0 && provisional {
			continue // no open bucket at all
		}
		r.Dims = map[string]string{}
		for i, d := range dims {
			r.Dims[d] = vals[i]
		}
		r.Provisional = provisional
		out = append(out, r)
	}
	return out, rows.Err()
}
