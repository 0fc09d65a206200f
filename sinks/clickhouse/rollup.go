package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// The usage rollup: settled usage summed by day, tenth of a month and
// month, per tenant, exactly once, so that reads do not take each fact's latest revision
// with FINAL (which ClickHouse 18.16 merges on one thread, reading every
// column the sums need: ~300 ms for a 1,000-user quarter).
//
// A build sums the latest revision of each fact among the rows written
// before its cutoff (usage.written_at, the server's clock at insert). A
// read adds, for each fact with a row written since, its latest revision
// minus the one the build counted: a restatement, a late row and a
// redelivered copy all come out right, and the answer is the table's as
// it stands, not the build's. Builds are numbered, each a partition of
// usage_rollup; a read takes the latest recorded done, whose rows are all
// in by then.

// rollupDims are the usage columns a rollup row keeps: every dimension of
// UsageDims but the day, and the people, who are attributed when read.
const rollupDims = "vendor, stream, model, user_id, project_id, api_key_id"

// rollupBuild is the build a read of a tenant's rollup takes: its number
// (0: none) and its cutoff.
type rollupBuild struct {
	build   uint64
	through time.Time
}

// rollupSums are a source's sums over the rollup's rows.
var rollupSums = countSums + "sum(estimated_usd) AS s_usd, toInt64(sum(unpriced)) AS s_unpriced, max(price_version) AS s_version, " +
	"toUInt64(sum(n)) AS s_n, min(first_day) AS s_first, max(last_day) AS s_last"

// latestRollup returns tenant's latest rollup build.
func (s *Store) latestRollup(ctx context.Context, tenant string) (rollupBuild, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var b rollupBuild
	var through uint32
	err := s.conn.QueryRow(ctx, `SELECT max(build), toUInt32(argMax(through, build))
		FROM usage_rollup_builds WHERE tenant = ? AND done = 1`, tenant).Scan(&b.build, &through)
	if err != nil {
		return b, fmt.Errorf("usage rollup of %s: %w", tenant, err)
	}
	b.through = time.Unix(int64(through), 0).UTC()
	return b, nil
}

// Grains of the rollup: a row sums a day, a month, or a tenth of a month
// (days 1–10, 11–20, 21 to the end), so that a window reads whole months,
// then whole tenths, and only its edges by day.
const (
	grainDay    = 0
	grainMonth  = 1
	grainDecade = 2
)

// decadeOf is the first day of a day's tenth of a month, in SQL.
const decadeOf = "addDays(toStartOfMonth(day), 10 * intDiv(least(toDayOfMonth(day) - 1, 20), 10))"

// pieces splits [start, end) into the rollup rows that cover it: whole
// months and tenths when coarse, and ranges of days [from, to).
func pieces(start, end time.Time, coarse bool) (months, decades []time.Time, days [][2]time.Time) {
	addDays := func(from, to time.Time) {
		if n := len(days); n > 0 && days[n-1][1].Equal(from) {
			days[n-1][1] = to
			return
		}
		days = append(days, [2]time.Time{from, to})
	}
	for m := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC); m.Before(end); m = m.AddDate(0, 1, 0) {
		next := m.AddDate(0, 1, 0)
		if coarse && !m.Before(start) && !next.After(end) {
			months = append(months, m)
			continue
		}
		for _, d := range [][2]time.Time{{m, m.AddDate(0, 0, 10)}, {m.AddDate(0, 0, 10), m.AddDate(0, 0, 20)}, {m.AddDate(0, 0, 20), next}} {
			from, to := maxTime(d[0], start), minTime(d[1], end)
			switch {
			case !from.Before(to):
			case coarse && from.Equal(d[0]) && to.Equal(d[1]):
				decades = append(decades, d[0])
			default:
				addDays(from, to)
			}
		}
	}
	return months, decades, days
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// settledRollup returns the sources of tenant's settled usage rows in
// [start, end): rollup rows of build b (whole months and tenths when
// coarse, else days), and the correction: each fact with a row written
// since b's cutoff as its latest revision minus the one b counted — with
// where (conditions on the columns of rollupDims) applied to both. Their
// sums are summed together: apart, as a caller may run them side by side.
// The correction is read whether or not rows were written since: a running
// installation always has some, and finding out costs the scan it starts
// with.
func settledRollup(tenant string, b rollupBuild, start, end time.Time, coarse bool, where query) []source {
	months, decades, days := pieces(start, end, coarse)
	var grains []string
	var args []any
	for _, m := range months {
		grains, args = append(grains, fmt.Sprintf("grain = %d AND day = toDate(?)", grainMonth)), append(args, m.Format(time.DateOnly))
	}
	for _, d := range decades {
		grains, args = append(grains, fmt.Sprintf("grain = %d AND day = toDate(?)", grainDecade)), append(args, d.Format(time.DateOnly))
	}
	for _, r := range days {
		grains, args = append(grains, fmt.Sprintf("grain = %d AND day >= toDate(?) AND day < toDate(?)", grainDay)),
			append(args, r[0].Format(time.DateOnly), r[1].Format(time.DateOnly))
	}
	if len(grains) == 0 {
		grains = []string{"0"}
	}
	// The table itself, not a subquery of it: on 18.16 each level of
	// subquery costs a read ~6 ms, whatever its rows. Each condition names
	// a range of the sort key: a read touches its rows alone.
	rollup := source{sum: query{text: rollupSums}, from: query{`FROM usage_rollup WHERE tenant = ? AND build = ? AND (` + strings.Join(grains, " OR ") + `)` + where.text,
		append(append([]any{tenant, b.build}, args...), where.args...)}}
	// One row per fact with a row written since the cutoff (old: a row the
	// build counted), in the columns of rollupSums: the caller sums them
	// into its groups, which are of the fact's columns. A fact keeps its
	// day: the groups of a coarse read (months, not days or weeks) hold it
	// beside the rollup row of its month or tenth.
	correction := source{
		sum: query{eachCount("argMax(%[1]s, seq) - argMaxIf(%[1]s, seq, old) AS s_%[1]s") + `,
			CAST(argMax(estimated_usd, seq) - argMaxIf(estimated_usd, seq, (written_at < toDateTime(?)) AS old) AS Decimal(38, 9)) AS s_usd,
			toInt64(argMax(priced, seq) = 0) - toInt64(max(old) AND argMaxIf(priced, seq, old) = 0) AS s_unpriced,
			argMax(price_version, seq) AS s_version, toUInt64(1 - max(old)) AS s_n, day AS s_first, day AS s_last`, []any{b.through.Unix()}},
		from: query{`FROM usage
			-- read no other column of a fact not written since; the day (a
			-- fact has one) with the hashes, the sort key after the tenant:
			-- new rows are mostly of the last days, and reading every day's
			-- hashes cost more than the rest of the correction
			PREWHERE (day, fact_hash, fact_hash2) IN (SELECT day, fact_hash, fact_hash2 FROM usage WHERE tenant = ? AND written_at >= toDateTime(?))
			WHERE tenant = ? AND day >= toDate(?) AND day < toDate(?) AND primary_set = 1` + where.text,
			append([]any{tenant, b.through.Unix(), tenant, start.Format(time.DateOnly), end.Format(time.DateOnly)}, where.args...)},
		group: " GROUP BY fact_hash, fact_hash2, day, " + rollupDims,
	}
	return []source{rollup, correction}
}

// RefreshRollup builds tenant's usage rollup again when cfg says enough
// was written since its last build, counting the rows written up to
// cfg.Margin ago; it reports whether it built.
func (s *Store) RefreshRollup(ctx context.Context, tenant string, cfg RollupsConfig) (bool, error) {
	cfg.defaults()
	last, err := s.latestRollup(ctx, tenant)
	if err != nil {
		return false, err
	}
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	var since, total uint64
	var now uint32
	// since: the rows a build now would count that the last one did not.
	err = s.conn.QueryRow(qctx, `SELECT countIf(written_at >= toDateTime(?) AND written_at < now() - ?), count(), toUInt32(now())
		FROM usage WHERE tenant = ? AND primary_set = 1`, last.through.Unix(), int64(max(cfg.Margin, 0)/time.Second), tenant).Scan(&since, &total, &now)
	cancel()
	if err != nil {
		return false, fmt.Errorf("usage rollup of %s: %w", tenant, err)
	}
	age := time.Unix(int64(now), 0).Sub(last.through)
	if since == 0 || (since < cfg.MinRows || since*20 < total) && age < cfg.MaxAge {
		return false, nil
	}
	b := rollupBuild{build: uint64(time.Now().UnixNano()), through: time.Unix(int64(now), 0).Add(-max(cfg.Margin, 0))}
	if b.build <= last.build {
		b.build = last.build + 1
	}
	cols := "tenant, build, grain, day, " + rollupDims + ", " + countColumns + ", estimated_usd, unpriced, price_version, n, first_day, last_day"
	byDay := `INSERT INTO usage_rollup (` + cols + `)
		SELECT tenant, ?, ` + fmt.Sprint(grainDay) + `, day, ` + rollupDims + `, ` + eachCount("sum(l_%[1]s)") + `,
			sum(l_usd), countIf(l_priced = 0), max(l_version), count(), min(day), max(day)
		FROM (
			SELECT tenant, day, ` + rollupDims + `, ` + eachCount("argMax(%[1]s, seq) AS l_%[1]s") + `,
				argMax(estimated_usd, seq) AS l_usd, argMax(priced, seq) AS l_priced, argMax(price_version, seq) AS l_version
			FROM usage WHERE tenant = ? AND primary_set = 1 AND written_at < toDateTime(?)
			GROUP BY tenant, fact_hash, fact_hash2, day, ` + rollupDims + `
		)
		GROUP BY tenant, day, ` + rollupDims
	// Months and tenths are summed from the build's days.
	coarse := func(grain int, of string) string {
		return `INSERT INTO usage_rollup (` + cols + `)
		SELECT tenant, build, ` + fmt.Sprint(grain) + `, ` + of + ` AS block, ` + rollupDims + `, ` + eachCount("sum(%[1]s)") + `,
			sum(estimated_usd), sum(unpriced), max(price_version), sum(n), min(first_day), max(last_day)
		FROM usage_rollup WHERE tenant = ? AND build = ? AND grain = ` + fmt.Sprint(grainDay) + `
		GROUP BY tenant, build, block, ` + rollupDims
	}
	record := func(done uint8) error {
		return s.batch(ctx, `INSERT INTO usage_rollup_builds (tenant, build, through, done)`, func(add func(...any) error) error {
			return add(tenant, b.build, b.through, done)
		})
	}
	if err := record(0); err != nil {
		return false, fmt.Errorf("usage rollup of %s: %w", tenant, err)
	}
	for _, st := range []struct {
		text string
		args []any
	}{
		{byDay, []any{b.build, tenant, b.through.Unix()}},
		{coarse(grainMonth, "toStartOfMonth(day)"), []any{tenant, b.build}},
		{coarse(grainDecade, decadeOf), []any{tenant, b.build}},
	} {
		qctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := s.conn.Exec(qctx, st.text, st.args...)
		cancel()
		if err != nil {
			return false, fmt.Errorf("usage rollup of %s: %w", tenant, err)
		}
	}
	// Done once its rows are all in: from now on reads take it.
	if err := record(1); err != nil {
		return false, fmt.Errorf("usage rollup of %s: %w", tenant, err)
	}
	if err := s.dropRollups(ctx, tenant, last.build); err != nil {
		return false, fmt.Errorf("usage rollup of %s: %w", tenant, err)
	}
	return true, nil
}

// dropRollups drops tenant's builds begun before build (the one before
// the new one: a read that took it may still be reading it).
func (s *Store) dropRollups(ctx context.Context, tenant string, build uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT build FROM usage_rollup_builds WHERE tenant = ? AND build < ?", tenant, build)
	if err != nil {
		return fmt.Errorf("old builds: %w", err)
	}
	var old []uint64
	for rows.Next() {
		var b uint64
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return fmt.Errorf("old builds: %w", err)
		}
		old = append(old, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(old) == 0 {
		return err
	}
	for _, b := range old {
		if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE usage_rollup DROP PARTITION %d", b)); err != nil {
			return fmt.Errorf("drop build %d: %w", b, err)
		}
	}
	// A few rows per build: a mutation of this table is cheap.
	if err := s.conn.Exec(ctx, "ALTER TABLE usage_rollup_builds DELETE WHERE tenant = ? AND build < ?", tenant, build); err != nil {
		return fmt.Errorf("forget old builds: %w", err)
	}
	return nil
}

// RollupsConfig configures the rollup refresher.
type RollupsConfig struct {
	// Interval is the time between two looks at every tenant. Default 1 min.
	Interval time.Duration
	// Margin is how old a usage row must be for a build to count it:
	// more than an insert takes to become visible (rows younger are read
	// from the usage table itself). Default 10 min; negative is none.
	Margin time.Duration
	// A tenant is built again once the facts written since its last
	// build are MinRows (default 5,000) and a twentieth of its facts, or
	// are any and the build is MaxAge old (default 1 h).
	MinRows uint64
	MaxAge  time.Duration
}

func (c *RollupsConfig) defaults() {
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.Margin == 0 {
		c.Margin = 10 * time.Minute
	}
	if c.MinRows == 0 {
		c.MinRows = 5000
	}
	if c.MaxAge == 0 {
		c.MaxAge = time.Hour
	}
}

// Rollups keeps every tenant's usage rollup close to its usage.
type Rollups struct {
	cfg   RollupsConfig
	store *Store
	log   *slog.Logger
}

// NewRollups returns a refresher of store's rollups; a nil logger discards.
func NewRollups(cfg RollupsConfig, store *Store, logger *slog.Logger) *Rollups {
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Rollups{cfg: cfg, store: store, log: logger.With("component", "rollups")}
}

// Run looks at every tenant now and then every Interval, building the
// rollups that RefreshRollup says are due, until ctx ends. A tenant that
// fails is logged and tried again at the next round: reads stay exact,
// only slower.
func (r *Rollups) Run(ctx context.Context) error {
	return r.store.everyTenant(ctx, r.cfg.Interval, r.log, "rollup", func(ctx context.Context, tenant string) error {
		_, err := r.store.RefreshRollup(ctx, tenant, r.cfg)
		return err
	})
}
