package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/pipeline/stream"
)

// UsageDims are the dimensions usage can be grouped and filtered by, with
// their columns.
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
	// read: see attributedUsage.
	"person":      "person",
	"attribution": "attribution",
	// The report a row comes from: completions, images, messages…
	"usage_type": usageTypeColumn,
}

// usageTypeColumn maps each usage stream to its report's endpoint, from
// the catalogue: a breakdown is of the same usage type as what it splits.
var usageTypeColumn = func() string {
	var names, endpoints []string
	for _, v := range stream.VendorNames() {
		for _, s := range stream.Of(v) {
			if s.Kind == stream.UsageReport && !slices.Contains(names, "'"+s.Name+"'") {
				names, endpoints = append(names, "'"+s.Name+"'"), append(endpoints, "'"+s.Endpoint+"'")
			}
		}
	}
	return "transform(stream, [" + strings.Join(names, ", ") + "], [" + strings.Join(endpoints, ", ") + "], '')"
}()

// personIDColumn is the opaque person id of a row's person (see
// api.PersonID), for filters, given the tenant as its argument; "" when
// the row has no person.
const personIDColumn = `if(person = '', '', concat('p_', substring(lower(hex(SHA256(concat('ogma-person/v1', char(0), ?, char(0), person)))), 1, 24)))`

// UsageQuery asks for usage sums of one tenant.
type UsageQuery struct {
	Tenant string
	// Start is inclusive, End exclusive; both are UTC days.
	Start, End time.Time
	// GroupBy holds keys of UsageDims, in output order.
	GroupBy []string
	// Vendor narrows to one vendor; "" is all.
	Vendor string
	// Filters keeps only rows whose value of a dimension (a key of
	// UsageDims but day, week and month) is one of those given; a person
	// is given by its opaque id.
	Filters map[string][]string
	// Unattributed keeps only rows no vendor user or link attributes:
	// key_owner and unmapped.
	Unattributed bool
	// Offset and Limit page the rows (settled first, then provisional,
	// each in GroupBy order); Limit 0 is all.
	Offset, Limit int
}

// UsageRow is one group's sums.
type UsageRow struct {
	// Dims holds the group's value of each GroupBy dimension.
	Dims                                                           map[string]string
	InputTokens, InputCachedTokens, OutputTokens, NumModelRequests int64
	// InputCacheWrite5m and InputCacheWrite1h are the cache writes (see
	// normalize.Usage).
	InputCacheWrite5m, InputCacheWrite1h int64
	// The units other than tokens (see normalize.Usage).
	Images, Characters, Seconds, Bytes, Sessions, Calls int64
	// EstimatedUSD is the list-price estimate of the group's usage;
	// Unpriced says some of it is not priced by the table (a model or a
	// unit), so the estimate is a lower bound. PriceVersion is the table's
	// version (the latest, if rows were estimated under several).
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
	var cols, aliases []string
	for i, d := range q.GroupBy {
		c, ok := UsageDims[d]
		if !ok {
			return nil, fmt.Errorf("usage: unknown dimension %q", d)
		}
		cols, aliases = append(cols, c+fmt.Sprintf(" AS d%d", i)), append(aliases, fmt.Sprintf("d%d", i))
	}
	sel, group := "", ""
	if len(cols) > 0 {
		sel = strings.Join(cols, ", ") + ", "
		group = " GROUP BY " + strings.Join(aliases, ", ")
	}
	sums := "sum(s_input_tokens), sum(s_input_cached_tokens), sum(s_output_tokens), sum(s_num_model_requests), " +
		"sum(s_input_cache_write_5m), sum(s_input_cache_write_1h), sum(s_images), sum(s_characters), sum(s_seconds), sum(s_bytes), " +
		"sum(s_sessions), sum(s_calls), sum(s_usd), min(s_priced), max(s_version), sum(s_n)"
	var keep []string
	for _, d := range q.GroupBy {
		keep = append(keep, rawColumn[d])
	}
	settled, open, err := sources(q, slices.Contains(q.GroupBy, "person") || slices.Contains(q.GroupBy, "attribution"), keep...)
	if err != nil {
		return nil, err
	}
	text := "SELECT * FROM (SELECT 0 AS p, " + sel + sums + " FROM (" + settled.text + ")" + group +
		" UNION ALL SELECT 1 AS p, " + sel + sums + " FROM (" + open.text + ")" + group + ") ORDER BY " + strings.Join(append([]string{"p"}, aliases...), ", ")
	if q.Limit > 0 {
		text += fmt.Sprintf(" LIMIT %d, %d", q.Offset, q.Limit)
	}
	return s.usageRows(ctx, text, append(settled.args, open.args...), q.GroupBy)
}

// rawColumn is the column of the usage tables each dimension reads;
// person and attribution come with the attribution.
var rawColumn = map[string]string{"day": "day", "week": "day", "month": "day", "vendor": "vendor", "model": "model",
	"user": "user_id", "project": "project_id", "api_key": "api_key_id", "usage_type": "stream"}

// partialSums are the sums sources gives per group: each count (s_<column>),
// the estimate (s_usd), whether all is priced (s_priced), the latest table
// version (s_version), the rows (s_n), the first and last day.
var partialSums = func() string {
	var b strings.Builder
	for c := range strings.SplitSeq(countColumns, ", ") {
		fmt.Fprintf(&b, "sum(%s) AS s_%s, ", c, c)
	}
	return b.String() + "sum(estimated_usd) AS s_usd, min(priced) AS s_priced, max(price_version) AS s_version, count() AS s_n, " +
		"min(day) AS s_first, max(day) AS s_last"
}()

// partialColumns names partialSums' columns.
var partialColumns = func() string {
	var cols []string
	for c := range strings.SplitSeq(countColumns, ", ") {
		cols = append(cols, "s_"+c)
	}
	return strings.Join(append(cols, "s_usd", "s_priced", "s_version", "s_n", "s_first", "s_last"), ", ")
}()

// sources returns the queries of the usage rows q asks about — settled
// facts that totals count, and open buckets as last fetched — summed
// (partialSums) by vendor, user, API key and the columns keep names, and
// with each group's person and attribution when attributed (or when q
// filters on them). Summing before the attribution joins keeps them small:
// a person's 90 days are a few rows by then, not thousands.
func sources(q UsageQuery, attributed bool, keep ...string) (settled, open query, err error) {
	// Dates bind as text: 18.16 does not compare a Date with a DateTime.
	where := query{"tenant = ? AND day >= toDate(?) AND day < toDate(?)", []any{q.Tenant, q.Start.Format(time.DateOnly), q.End.Format(time.DateOnly)}}
	if q.Vendor != "" {
		where.text, where.args = where.text+" AND vendor = ?", append(where.args, q.Vendor)
	}
	// Who a row belongs to is known only once attributed: those filters
	// apply to the attributed rows.
	var outer query
	if q.Unattributed {
		outer.text = " AND attribution != 'user'"
	}
	for _, d := range slices.Sorted(maps.Keys(q.Filters)) {
		c, ok := UsageDims[d]
		if !ok || d == "day" || d == "week" || d == "month" {
			return settled, open, fmt.Errorf("usage: no filter on %q", d)
		}
		switch d {
		case "person":
			outer.text, outer.args = outer.text+" AND has(?, "+personIDColumn+")", append(outer.args, q.Filters[d], q.Tenant)
		case "attribution":
			outer.text, outer.args = outer.text+" AND has(?, "+c+")", append(outer.args, q.Filters[d])
		default:
			where.text, where.args = where.text+" AND has(?, "+c+")", append(where.args, q.Filters[d])
		}
	}
	group := []string{"vendor", "user_id", "api_key_id"}
	for _, c := range keep {
		if c != "" && !slices.Contains(group, c) {
			group = append(group, c)
		}
	}
	cols := strings.Join(group, ", ")
	// People are resolved (joins) only when asked for.
	attributed = attributed || outer.text != ""
	from := func(table string, where query) query {
		rows := query{"SELECT " + cols + ", " + partialSums + " FROM " + table + " WHERE " + where.text + " GROUP BY " + cols, where.args}
		if !attributed {
			return rows
		}
		a := attributedUsage(q.Tenant, rows, cols+", "+partialColumns)
		return query{"SELECT * FROM (" + a.text + ") WHERE 1" + outer.text, append(a.args, outer.args...)}
	}
	settled = from("usage FINAL", query{where.text + " AND primary_set = 1", where.args})
	open = from("usage_provisional", query{where.text + " AND kind = 0 AND (vendor, stream, bucket_start, version) IN " +
		"(SELECT vendor, stream, bucket_start, max(version) FROM usage_provisional WHERE tenant = ? GROUP BY vendor, stream, bucket_start)",
		append(slices.Clone(where.args), q.Tenant)})
	return settled, open, nil
}

func (s *Store) usageRows(ctx context.Context, query string, args []any, dims []string) ([]UsageRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("usage query: %w", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		vals := make([]string, len(dims))
		var r UsageRow
		var provisional, priced uint8
		var n uint64
		dest := make([]any, 0, len(dims)+17)
		dest = append(dest, &provisional)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		dest = append(dest, &r.InputTokens, &r.InputCachedTokens, &r.OutputTokens, &r.NumModelRequests,
			&r.InputCacheWrite5m, &r.InputCacheWrite1h, &r.Images, &r.Characters, &r.Seconds, &r.Bytes, &r.Sessions, &r.Calls,
			&r.EstimatedUSD, &priced, &r.PriceVersion, &n)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("usage query: %w", err)
		}
		r.Unpriced, r.Provisional = priced == 0, provisional == 1
		if n == 0 && r.Provisional {
			continue // no open bucket at all: a sum over no rows
		}
		r.Dims = map[string]string{}
		for i, d := range dims {
			r.Dims[d] = vals[i]
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CompleteThrough returns when tenant's reports of kind (usage or cost)
// are settled up to in every such stream of vendor ("" for all) that has
// settled any bucket: every bucket before it has its manifest. ok is false
// before any has.
func (s *Store) CompleteThrough(ctx context.Context, tenant, vendor string, kind stream.Kind) (t time.Time, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var reports []string
	for _, v := range stream.VendorNames() {
		for _, spec := range stream.Of(v) {
			if spec.Kind == kind && (vendor == "" || vendor == v) {
				reports = append(reports, v+" "+spec.Name)
			}
		}
	}
	rows, err := s.conn.Query(ctx, `SELECT max(visitParamExtractString(key, 'bucket_start')) FROM events
		WHERE tenant = ? AND kind = 'manifest' AND has(?, concat(vendor, ' ', stream))
		GROUP BY vendor, stream`, tenant, reports)
	if err != nil {
		return t, false, fmt.Errorf("complete through: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var last string
		if err := rows.Scan(&last); err != nil {
			return t, false, fmt.Errorf("complete through: %w", err)
		}
		b, err := time.Parse(time.RFC3339, last)
		if err != nil {
			return t, false, fmt.Errorf("complete through: bucket start %q: %w", last, err)
		}
		// Reports are read in daily buckets.
		if end := b.Add(24 * time.Hour); !ok || end.Before(t) {
			t, ok = end, true
		}
	}
	return t, ok, rows.Err()
}

// UnmappedKey is the usage of one API key (or of no key) that no vendor
// user or link attributes, with what the usage tells of it.
type UnmappedKey struct {
	Vendor, APIKeyID string
	// Attribution is key_owner (Person is the key's holder, inferred) or
	// unmapped.
	Attribution, Person string
	// Projects and Users are the projects (workspaces) and vendor user ids
	// the rows name; Users at most maxUnmappedUsers of them.
	Projects, Users []string
	// FirstSeen and LastSeen are the first and last days of the usage.
	FirstSeen, LastSeen                         time.Time
	InputTokens, OutputTokens, NumModelRequests int64
	EstimatedUSD                                decimal.Decimal
	Unpriced                                    bool
}

const maxUnmappedUsers = 20

// UnmappedKeys returns, per key, the usage in q's window that no vendor
// user or link attributes, settled and open alike, largest estimate
// first.
func (s *Store) UnmappedKeys(ctx context.Context, q UsageQuery) ([]UnmappedKey, error) {
	q.Unattributed = true
	settled, open, err := sources(q, true, "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT vendor, api_key_id, any(attribution), any(person), groupUniqArray(project_id),
			arraySlice(groupUniqArray(user_id), 1, `+fmt.Sprint(maxUnmappedUsers)+`), min(s_first), max(s_last),
			sum(s_input_tokens), sum(s_output_tokens), sum(s_num_model_requests), sum(s_usd) AS usd, min(s_priced)
		FROM (`+settled.text+` UNION ALL `+open.text+`)
		GROUP BY vendor, api_key_id ORDER BY usd DESC, vendor, api_key_id`, append(settled.args, open.args...)...)
	if err != nil {
		return nil, fmt.Errorf("unmapped query: %w", err)
	}
	defer rows.Close()
	var out []UnmappedKey
	for rows.Next() {
		var k UnmappedKey
		var priced uint8
		if err := rows.Scan(&k.Vendor, &k.APIKeyID, &k.Attribution, &k.Person, &k.Projects, &k.Users, &k.FirstSeen, &k.LastSeen,
			&k.InputTokens, &k.OutputTokens, &k.NumModelRequests, &k.EstimatedUSD, &priced); err != nil {
			return nil, fmt.Errorf("unmapped query: %w", err)
		}
		k.Unpriced = priced == 0
		k.Projects = slices.DeleteFunc(slices.Sorted(slices.Values(k.Projects)), func(p string) bool { return p == "" })
		k.Users = slices.DeleteFunc(slices.Sorted(slices.Values(k.Users)), func(u string) bool { return u == "" })
		out = append(out, k)
	}
	return out, rows.Err()
}
