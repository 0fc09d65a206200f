package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"

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
	// read: see attribute.
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
	Dims                                                           Dims
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
	rows, _, _, err := s.UsageThrough(ctx, q)
	return rows, err
}

// UsageThrough is Usage, with when q's vendor's usage is complete through
// (see CompleteThrough) as the rows have it: both read from the same
// manifests, so the answer and its completeness agree.
func (s *Store) UsageThrough(ctx context.Context, q UsageQuery) (rows []UsageRow, through time.Time, ok bool, err error) {
	var cols, aliases []string
	for i, d := range q.GroupBy {
		c, ok := UsageDims[d]
		if !ok {
			return nil, through, false, fmt.Errorf("usage: unknown dimension %q", d)
		}
		alias := fmt.Sprintf("d%d", i)
		if d == "person" || d == "attribution" {
			c = "''" // attributed below
		}
		cols, aliases = append(cols, c+" AS "+alias), append(aliases, alias)
	}
	attributed := q.attributed()
	if attributed {
		// Each group keeps its vendor user and key until attributed.
		cols, aliases = append([]string{"vendor AS a_vendor", "user_id AS a_user", "api_key_id AS a_key"}, cols...),
			append([]string{"a_vendor", "a_user", "a_key"}, aliases...)
	}
	sel, group := "", ""
	if len(cols) > 0 {
		sel = strings.Join(cols, ", ") + ", "
		group = " GROUP BY " + strings.Join(aliases, ", ")
	}
	if !attributed {
		branches, last, err := s.sources(ctx, q, sel, group)
		if err != nil {
			return nil, through, false, err
		}
		through, ok = last.completeThrough(q.Vendor, stream.UsageReport)
		all := union(branches...)
		order := strings.Join(append([]string{"p"}, aliases...), ", ")
		text := "SELECT " + order + ", " + partialTotals + " FROM (" + all.text + ") GROUP BY " + order + " ORDER BY " + order
		if q.Limit > 0 {
			text += fmt.Sprintf(" LIMIT %d, %d", q.Offset, q.Limit)
		}
		ps, err := s.partials(ctx, text, all.args, len(q.GroupBy), false)
		return usageRows(ps, q.GroupBy), through, ok, err
	}
	// Each source on its own, side by side: the rows are summed again in Go.
	ps, last, err := s.partialsAttributed(ctx, q, len(q.GroupBy), sel, group)
	if err != nil {
		return nil, through, false, err
	}
	through, ok = last.completeThrough(q.Vendor, stream.UsageReport)
	// Summed again by the dimensions asked for, each group under its key
	// (groupKey), which sorts as the groups are ordered.
	byDims := map[string]*partial{}
	var out []*partial
	var k []byte
	for _, r := range ps {
		for i, d := range q.GroupBy {
			switch d {
			case "person":
				r.dims[i] = r.person
			case "attribution":
				r.dims[i] = r.attribution
			}
		}
		k = groupKey(k[:0], r.provisional, r.dims)
		if g := byDims[string(k)]; g != nil {
			g.add(r)
			continue
		}
		r.group = string(k)
		byDims[r.group] = r
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *partial) int { return strings.Compare(a.group, b.group) })
	if q.Limit > 0 {
		out = out[min(q.Offset, len(out)):min(q.Offset+q.Limit, len(out))]
	}
	return usageRows(out, q.GroupBy), through, ok, nil
}

// groupKey appends to k the key of a group: whether open, then each
// value after a separator. Keys compare as the groups are ordered — open
// last, then value by value — and differ when the groups do: the
// separator is two NULs and a NUL in a value is escaped as NUL 1, both
// below any other byte that may follow.
func groupKey(k []byte, provisional bool, dims []string) []byte {
	k = append(k, byte(b2i(provisional)))
	for _, d := range dims {
		k = append(k, 0, 0)
		for {
			i := strings.IndexByte(d, 0)
			if i < 0 {
				break
			}
			k, d = append(append(k, d[:i]...), 0, 1), d[i+1:]
		}
		k = append(k, d...)
	}
	return k
}

// attributed reports whether q needs each row's person or attribution.
func (q UsageQuery) attributed() bool {
	return slices.Contains(q.GroupBy, "person") || slices.Contains(q.GroupBy, "attribution") || q.Unattributed ||
		q.Filters["person"] != nil || q.Filters["attribution"] != nil
}

// keeps reports whether q's filters on people keep a row attributed so.
func (q UsageQuery) keeps(person, attribution string) bool {
	if q.Unattributed && attribution == "user" {
		return false
	}
	if ids := q.Filters["person"]; ids != nil && (person == "" || !slices.Contains(ids, PersonID(q.Tenant, person))) {
		return false
	}
	return q.Filters["attribution"] == nil || slices.Contains(q.Filters["attribution"], attribution)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// usageRows returns the rows of ps: an open branch with no open bucket at
// all (a sum over no rows) is left out.
func usageRows(ps []*partial, dims []string) []UsageRow {
	out := make([]UsageRow, 0, len(ps))
	for _, p := range ps {
		if p.n == 0 && p.provisional {
			continue
		}
		r := UsageRow{Dims: Dims{names: dims, values: p.dims}, Provisional: p.provisional, EstimatedUSD: p.usd, Unpriced: p.unpriced > 0, PriceVersion: p.version}
		c := p.counts
		r.InputTokens, r.InputCachedTokens, r.InputCacheWrite5m, r.InputCacheWrite1h, r.OutputTokens, r.NumModelRequests = c[0], c[1], c[2], c[3], c[4], c[5]
		r.Images, r.Characters, r.Seconds, r.Bytes, r.Sessions, r.Calls = c[6], c[7], c[8], c[9], c[10], c[11]
		out = append(out, r)
	}
	return out
}

// A source's sums, in the order partials scans them, are each count
// (s_<column>), the estimate (s_usd, Decimal(38, 9) in every source, as
// a union needs), the facts the price table does not price (s_unpriced:
// a count, so that a correction of the rollup can take one back), the
// latest table version (s_version), the facts (s_n), the first and last
// day: rollupSums, the correction's, rowSums.

// countSums sums each count column c as s_c.
var countSums = eachCount("sum(%[1]s) AS s_%[1]s") + ", "

// eachCount returns format applied to each count column (as %[1]s), in
// countColumns' order, joined by commas.
func eachCount(format string) string {
	var out []string
	for c := range strings.SplitSeq(countColumns, ", ") {
		out = append(out, fmt.Sprintf(format, c))
	}
	return strings.Join(out, ", ")
}

// partialTotals sums a source's sums again, in the same order.
var partialTotals = eachCount("sum(s_%[1]s)") + ", sum(s_usd), sum(s_unpriced), max(s_version), sum(s_n), min(s_first), max(s_last)"

// source is where a query of usage finds its rows (from, the FROM clause
// with its conditions) and what sums them as partials scans them. A
// source with a group of its own gives rows of finer groups (the
// correction: one per fact), and one whose rows are its groups (perRow:
// the open buckets' rows) gives them as they are; its caller sums them
// into its own.
type source struct {
	sum, from query
	group     string
	perRow    bool
}

// sums returns the query of src's sums by group, whose columns sel
// selects (each followed by ", "), as branch p (0 settled, 1 open).
func (src source) sums(p int, sel, group string) query {
	switch {
	case src.perRow:
		group = ""
	case src.group != "":
		group = src.group
	}
	return query{fmt.Sprintf("SELECT %d AS p, ", p) + sel + src.sum.text + " " + src.from.text + group, append(slices.Clip(src.sum.args), src.from.args...)}
}

// rowSums are the sums of a single row of usage_provisional.
var rowSums = eachCount("%[1]s AS s_%[1]s") + ", CAST(estimated_usd AS Decimal(38, 9)) AS s_usd, toInt64(priced = 0) AS s_unpriced, " +
	"price_version AS s_version, toUInt64(1) AS s_n, day AS s_first, day AS s_last"

// sources returns the queries of the sums of the usage rows q asks about
// by group, whose columns sel selects (see source.sums): of the settled
// facts that totals count (from the tenant's latest rollup build and the
// facts written since) as branch 0, then of open buckets as last fetched,
// if any, as branch 1. Each source has the columns day, vendor, stream, model,
// user_id, project_id and api_key_id that UsageDims read. Filters on
// people are left to the caller.
func (s *Store) sources(ctx context.Context, q UsageQuery, sel, group string) ([]query, settled, error) {
	var b rollupBuild
	var through settled
	var latest []bucketVersion
	var g errgroup.Group
	g.Go(func() (err error) { b, err = s.latestRollup(ctx, q.Tenant); return err })
	g.Go(func() (err error) { through, err = s.settledThrough(ctx, q.Tenant); return err })
	g.Go(func() (err error) { latest, err = s.latestVersions(ctx, q); return err })
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var filters query
	if q.Vendor != "" {
		filters.text, filters.args = " AND vendor = ?", []any{q.Vendor}
	}
	for _, d := range slices.Sorted(maps.Keys(q.Filters)) {
		c, ok := UsageDims[d]
		if !ok || d == "day" || d == "week" || d == "month" {
			return nil, nil, fmt.Errorf("usage: no filter on %q", d)
		}
		if d != "person" && d != "attribution" {
			filters.text, filters.args = filters.text+" AND has(?, "+c+")", append(filters.args, q.Filters[d])
		}
	}
	// Whole months and tenths are read from the rollup unless days are asked for.
	coarse := !slices.Contains(q.GroupBy, "day") && !slices.Contains(q.GroupBy, "week")
	var qs []query
	for _, src := range settledRollup(q.Tenant, b, q.Start, q.End, coarse, filters) {
		qs = append(qs, src.sums(0, sel, group))
	}
	if open, ok := openBuckets(q, through, latest, filters); ok {
		qs = append(qs, open.sums(1, sel, group))
	}
	return qs, through, nil
}

// openBuckets returns the source of q's open buckets as last fetched,
// with filters applied: of each bucket in latest (see latestVersions)
// that no manifest settles, the rows of its highest version, unless that
// says the bucket is settled or empty. ok is false when no bucket is open.
//
// Every version of every bucket fetched while open stays in
// usage_provisional (a day's bucket is fetched ~100 times), so the read
// names each open bucket's highest version, which the sort key leads to;
// and a bucket counts as open only after the last bucket of its stream
// that manifests settle — buckets settle in order, as complete_through
// also holds — so that a settled bucket is not read (nor counted beside
// its facts, were its settled version lost). At 30 days of history, 8.6M
// rows, the read took 270–580 ms; by the range alone 35–39 ms (the open
// day's ~100 versions); by each bucket's highest version, looked up in a
// subquery, 11–14; named, 3,000 rows are read in ~11 ms instead of ~15.
func openBuckets(q UsageQuery, settledThrough settled, latest []bucketVersion, filters query) (_ source, ok bool) {
	var tuples []string
	var args []any
	for _, b := range latest {
		if stream.KindOf(b.vendor, b.stream) != stream.UsageReport {
			continue
		}
		if last, found := settledThrough[[2]string{b.vendor, b.stream}]; found && !b.start.After(last) {
			continue
		}
		tuples, args = append(tuples, "(?, ?, toDateTime(?), ?)"), append(args, b.vendor, b.stream, b.start.Unix(), b.version)
	}
	if len(tuples) == 0 {
		return source{}, false
	}
	// Dates bind as text: 18.16 does not compare a Date with a DateTime.
	where := "tenant = ? AND (vendor, stream, bucket_start, version) IN (" + strings.Join(tuples, ", ") + ") AND day >= toDate(?) AND day < toDate(?)" + filters.text + " AND kind = 0"
	args = slices.Concat([]any{q.Tenant}, args, []any{q.Start.Format(time.DateOnly), q.End.Format(time.DateOnly)}, filters.args)
	// Row by row, not summed: an open bucket holds about as many rows as
	// groups, and 18.16's sums of so many columns cost more than the rows
	// (~20 against ~13 ms for 3,000).
	return source{sum: query{text: rowSums}, from: query{"FROM usage_provisional WHERE " + where, args}, perRow: true}, true
}

// bucketVersion is the highest version of a bucket fetched while open.
type bucketVersion struct {
	vendor, stream string
	start          time.Time
	version        int64
}

// latestVersions returns the highest version of each of q's tenant's
// buckets fetched while open that starts in q's window, of q's vendor.
func (s *Store) latestVersions(ctx context.Context, q UsageQuery) ([]bucketVersion, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	text := "SELECT vendor, stream, bucket_start, max(version) FROM provisional_versions WHERE tenant = ? AND bucket_start >= toDateTime(?) AND bucket_start < toDateTime(?)"
	args := []any{q.Tenant, q.Start.Unix(), q.End.Unix()}
	if q.Vendor != "" {
		text, args = text+" AND vendor = ?", append(args, q.Vendor)
	}
	var out []bucketVersion
	err := s.each(ctx, query{text + " GROUP BY vendor, stream, bucket_start", args}, func(scan func(...any) error) error {
		var b bucketVersion
		if err := scan(&b.vendor, &b.stream, &b.start, &b.version); err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open buckets of %s: %w", q.Tenant, err)
	}
	return out, nil
}

// settled holds, per report stream ({vendor, stream}), the start of the
// latest bucket its manifests settle.
type settled map[[2]string]time.Time

// completeThrough returns when the reports of kind (usage or cost) are
// settled up to in every such stream of vendor ("" for all) that has
// settled any bucket. ok is false before any has.
func (s settled) completeThrough(vendor string, kind stream.Kind) (t time.Time, ok bool) {
	for k, last := range s {
		if stream.KindOf(k[0], k[1]) != kind || vendor != "" && vendor != k[0] {
			continue
		}
		// Reports are read in daily buckets.
		if end := last.Add(24 * time.Hour); !ok || end.Before(t) {
			t, ok = end, true
		}
	}
	return t, ok
}

// settledThrough returns the buckets tenant's manifests settle.
func (s *Store) settledThrough(ctx context.Context, tenant string) (settled, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out := settled{}
	err := s.each(ctx, query{`SELECT vendor, stream, max(bucket_start) FROM manifests WHERE tenant = ? GROUP BY vendor, stream`, []any{tenant}},
		func(scan func(...any) error) error {
			var k [2]string
			var last string
			if err := scan(&k[0], &k[1], &last); err != nil {
				return err
			}
			b, err := time.Parse(time.RFC3339, last)
			if err != nil {
				return fmt.Errorf("bucket start %q: %w", last, err)
			}
			out[k] = b
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("settled buckets of %s: %w", tenant, err)
	}
	return out, nil
}

// partial is a row of partialTotals: a group's sums, by dimension values,
// and by vendor user and API key, with their person and attribution, when
// attributed.
type partial struct {
	provisional         bool
	vendor, user        string
	key                 string
	person, attribution string
	dims                []string
	group               string    // the key Usage sums attributed rows under
	counts              [12]int64 // countColumns' order
	usd                 decimal.Decimal
	unpriced            int64 // facts; a group is unpriced when it has any
	version             string
	n                   uint64
	first, last         time.Time
}

// add sums o into p.
func (p *partial) add(o *partial) {
	for i := range p.counts {
		p.counts[i] += o.counts[i]
	}
	p.usd = p.usd.Add(o.usd)
	p.unpriced += o.unpriced
	p.version = max(p.version, o.version)
	p.n += o.n
	if o.first.Before(p.first) {
		p.first = o.first
	}
	if o.last.After(p.last) {
		p.last = o.last
	}
}

// partials runs a query of partialTotals: p, then (when attributed) the
// vendor, user and key, then ndims dimension values, then the totals.
func (s *Store) partials(ctx context.Context, text string, args []any, ndims int, attributed bool) ([]*partial, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("usage query: %w", err)
	}
	defer rows.Close()
	var out []*partial
	// One of each for every row: thousands of rows are common.
	dest := make([]any, 0, 4+ndims+18)
	var provisional uint8
	for rows.Next() {
		r := &partial{dims: make([]string, ndims)}
		dest = append(dest[:0], &provisional)
		if attributed {
			dest = append(dest, &r.vendor, &r.user, &r.key)
		}
		for i := range r.dims {
			dest = append(dest, &r.dims[i])
		}
		for i := range r.counts {
			dest = append(dest, &r.counts[i])
		}
		dest = append(dest, &r.usd, &r.unpriced, &r.version, &r.n, &r.first, &r.last)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("usage query: %w", err)
		}
		r.provisional = provisional == 1
		out = append(out, r)
	}
	return out, rows.Err()
}

// partialsAttributed runs partials, attributed, on the queries of q's
// sources by group (sel and group begin with the vendor, user and key as
// a_vendor, a_user, a_key), side by side — made and run while the tenant's
// subjects, which attribute their rows, are read beside them — and returns
// the rows q's filters on people keep, each with its person and
// attribution.
func (s *Store) partialsAttributed(ctx context.Context, q UsageQuery, ndims int, sel, group string) ([]*partial, settled, error) {
	var g errgroup.Group
	var parts [][]*partial
	var subs []Subject
	var through settled
	g.Go(func() error {
		qs, last, err := s.sources(ctx, q, sel, group)
		if err != nil {
			return err
		}
		through, parts = last, make([][]*partial, len(qs))
		var pg errgroup.Group
		for i, sq := range qs {
			pg.Go(func() (err error) { parts[i], err = s.partials(ctx, sq.text, sq.args, ndims, true); return err })
		}
		return pg.Wait()
	})
	g.Go(func() (err error) { subs, err = s.Subjects(ctx, q.Tenant); return err })
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	by := subjectsByID(subs)
	return slices.DeleteFunc(slices.Concat(parts...), func(r *partial) bool {
		r.person, r.attribution = by.attribute(r.vendor, r.user, r.key)
		return !q.keeps(r.person, r.attribution)
	}), through, nil
}

// union is the UNION ALL of qs.
func union(qs ...query) query {
	var u query
	for i, q := range qs {
		if i > 0 {
			u.text += " UNION ALL "
		}
		u.text, u.args = u.text+q.text, append(u.args, q.args...)
	}
	return u
}

// CompleteThrough returns when tenant's reports of kind (usage or cost)
// are settled up to in every such stream of vendor ("" for all) that has
// settled any bucket: every bucket before it has its manifest. ok is false
// before any has.
func (s *Store) CompleteThrough(ctx context.Context, tenant, vendor string, kind stream.Kind) (t time.Time, ok bool, err error) {
	through, err := s.settledThrough(ctx, tenant)
	if err != nil {
		return t, false, fmt.Errorf("complete through: %w", err)
	}
	t, ok = through.completeThrough(vendor, kind)
	return t, ok, nil
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
// first, with when q's vendor's usage is complete through as the rows have
// it (see UsageThrough).
func (s *Store) UnmappedKeys(ctx context.Context, q UsageQuery) (_ []UnmappedKey, through time.Time, ok bool, err error) {
	q.Unattributed = true
	rows, last, err := s.partialsAttributed(ctx, q, 1, "vendor AS a_vendor, user_id AS a_user, api_key_id AS a_key, project_id AS d0, ",
		" GROUP BY a_vendor, a_user, a_key, d0")
	if err != nil {
		return nil, through, false, fmt.Errorf("unmapped: %w", err)
	}
	through, ok = last.completeThrough(q.Vendor, stream.UsageReport)
	type unmapped struct {
		sum             *partial
		projects, users map[string]bool
		UnmappedKey
	}
	byKey := map[[2]string]*unmapped{}
	var keys []*unmapped
	for _, r := range rows {
		k := byKey[[2]string{r.vendor, r.key}]
		if k == nil {
			k = &unmapped{sum: r, projects: map[string]bool{}, users: map[string]bool{},
				UnmappedKey: UnmappedKey{Vendor: r.vendor, APIKeyID: r.key, Attribution: r.attribution, Person: r.person}}
			byKey[[2]string{r.vendor, r.key}] = k
			keys = append(keys, k)
		} else {
			k.sum.add(r)
		}
		k.projects[r.dims[0]], k.users[r.user] = true, true
	}
	out := make([]UnmappedKey, 0, len(keys))
	for _, k := range keys {
		delete(k.projects, "")
		delete(k.users, "")
		k.Projects = slices.Sorted(maps.Keys(k.projects))
		k.Users = slices.Sorted(maps.Keys(k.users))
		k.Users = k.Users[:min(len(k.Users), maxUnmappedUsers)]
		k.FirstSeen, k.LastSeen = k.sum.first, k.sum.last
		k.InputTokens, k.OutputTokens, k.NumModelRequests = k.sum.counts[0], k.sum.counts[4], k.sum.counts[5]
		k.EstimatedUSD, k.Unpriced = k.sum.usd, k.sum.unpriced > 0
		out = append(out, k.UnmappedKey)
	}
	slices.SortFunc(out, func(a, b UnmappedKey) int {
		return cmp.Or(b.EstimatedUSD.Cmp(a.EstimatedUSD), cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.APIKeyID, b.APIKeyID))
	})
	return out, through, ok, nil
}
