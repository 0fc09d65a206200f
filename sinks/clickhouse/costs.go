package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// CostDims are the dimensions billed cost can be grouped by, with their
// columns.
var CostDims = map[string]string{
	"day":       "toString(day)",
	"month":     "toString(toStartOfMonth(day))",
	"project":   "project_id",
	"line_item": "line_item",
	"vendor":    "vendor",
}

// CostQuery asks for billed cost sums of one tenant.
type CostQuery struct {
	Tenant string
	// Start is inclusive, End exclusive; both are UTC days.
	Start, End time.Time
	// GroupBy holds keys of CostDims, in output order.
	GroupBy []string
	// Vendor narrows to one vendor; "" is all.
	Vendor string
}

// CostRow is one group's billed cost.
type CostRow struct {
	// Dims holds the group's value of each GroupBy dimension.
	Dims Dims
	// Amount is exact, in Currency's major unit.
	Amount   decimal.Decimal
	Currency string
	// Restated: the vendor changed some of the group's billed rows after
	// they were settled (a revision past the first).
	Restated bool
}

// Costs sums the latest revision of each settled billed cost fact per
// group: the vendors' own amounts, exact.
func (s *Store) Costs(ctx context.Context, q CostQuery) ([]CostRow, error) {
	var cols []string
	for _, d := range q.GroupBy {
		c, ok := CostDims[d]
		if !ok {
			return nil, fmt.Errorf("costs: unknown dimension %q", d)
		}
		cols = append(cols, c)
	}
	sel, group := "", ""
	if len(cols) > 0 {
		sel = strings.Join(cols, ", ") + ", "
		group = " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
	}
	// Dates bind as text: 18.16 does not compare a Date with a DateTime.
	where, args := "", []any{q.Tenant, q.Start.Format(time.DateOnly), q.End.Format(time.DateOnly)}
	if q.Vendor != "" {
		where, args = " AND vendor = ?", append(args, q.Vendor)
	}
	query := "SELECT " + sel + "toString(sum(amount)), any(currency), max(rev), count() FROM costs FINAL" +
		" WHERE tenant = ? AND day >= toDate(?) AND day < toDate(?)" + where + group
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("costs query: %w", err)
	}
	defer rows.Close()
	var out []CostRow
	for rows.Next() {
		vals := make([]string, len(cols))
		dest := make([]any, 0, len(cols)+4)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		var amount string
		var rev uint32
		var n uint64
		r := CostRow{Dims: Dims{names: q.GroupBy, values: vals}}
		dest = append(dest, &amount, &r.Currency, &rev, &n)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("costs query: %w", err)
		}
		if n == 0 {
			continue // the empty total of an empty window
		}
		if r.Amount, err = decimal.NewFromString(amount); err != nil {
			return nil, fmt.Errorf("costs query: amount %q: %w", amount, err)
		}
		r.Restated = rev > 0
		out = append(out, r)
	}
	return out, rows.Err()
}
