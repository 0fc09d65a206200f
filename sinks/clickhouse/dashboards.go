package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/control"
)

// Dashboard logins see one tenant. Each tenant gets a database of its own
// (TenantDatabase) holding what the shipped dashboards read — usage per
// day, billed cost per day, the chain's integrity — as tables the
// dashboards refresher rebuilds from the ledger's projections, attributed
// as the API attributes them. They are tables, not views over the shared
// ones, because ClickHouse 18.16 checks a view's reader against the tables
// under it: a login allowed one database must find everything there.
// A login is granted that database alone ([Store.GrantDashboardLogin]).

// dashboardTables are the tables of a tenant database, by name: their
// columns and sort key. The shipped dashboards' SQL reads these columns.
var dashboardTables = []struct {
	name    string
	columns []string
	order   string
}{
	{"usage_daily", []string{"day Date", "vendor String", "model String", "usage_type String", "project String", "api_key String",
		"person String", "attribution String", "input_total UInt64", "input_cache_read UInt64", "output UInt64", "requests UInt64",
		"estimated_usd Decimal(18, 9)", "unpriced UInt8", "provisional UInt8"}, "(day, vendor, model)"},
	{"costs_daily", []string{"day Date", "vendor String", "project String", "line_item String", "amount_usd Decimal(38, 18)", "restated UInt8"},
		"(day, vendor, project)"},
	{"integrity", []string{"refreshed_at DateTime", "head_seq UInt64", "head_hash String", "anchored_seq UInt64", "unanchored UInt64",
		"last_anchor_index UInt64", "last_anchor_log_index Int64", "last_anchor_time DateTime", "log_url String"}, "refreshed_at"},
}

// TenantDatabase returns the name of tenant's dashboard database.
func (s *Store) TenantDatabase(tenant string) string {
	return s.db + "_tenant_" + strings.ReplaceAll(tenant, "-", "_")
}

// DashboardLogin returns the name of tenant's dashboard login.
func DashboardLogin(tenant string) string {
	return "ogma_dashboard_" + strings.ReplaceAll(tenant, "-", "_")
}

// RefreshDashboards rebuilds tenant's dashboard database from the ledger's
// projections as they stand. Each table is written beside the one readers
// see, then swapped in, so a reader never sees a half-written table.
func (s *Store) RefreshDashboards(ctx context.Context, tenant string, now time.Time) error {
	if err := control.CheckTenantID(tenant); err != nil {
		return err
	}
	tdb := s.TenantDatabase(tenant)
	if err := s.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+tdb); err != nil {
		return fmt.Errorf("dashboards of %s: %w", tenant, err)
	}
	tomorrow := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	from := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	usage, err := s.Usage(ctx, UsageQuery{Tenant: tenant, Start: from, End: tomorrow,
		GroupBy: []string{"day", "vendor", "model", "usage_type", "project", "api_key", "person", "attribution"}})
	if err != nil {
		return fmt.Errorf("dashboards of %s: %w", tenant, err)
	}
	costs, err := s.Costs(ctx, CostQuery{Tenant: tenant, Start: from, End: tomorrow, GroupBy: []string{"day", "vendor", "project", "line_item"}})
	if err != nil {
		return fmt.Errorf("dashboards of %s: %w", tenant, err)
	}
	seq, hash, err := s.Head(ctx, tenant)
	if err != nil {
		return fmt.Errorf("dashboards of %s: %w", tenant, err)
	}
	anchor, _, err := s.LastAnchor(ctx, tenant)
	if err != nil {
		return fmt.Errorf("dashboards of %s: %w", tenant, err)
	}
	fill := map[string]func(add func(...any) error) error{
		"usage_daily": func(add func(...any) error) error {
			for _, r := range usage {
				day, err := time.Parse(time.DateOnly, r.Dims.Get("day"))
				if err != nil {
					return fmt.Errorf("usage day %q: %w", r.Dims.Get("day"), err)
				}
				d := r.Dims
				if err := add(day, d.Get("vendor"), d.Get("model"), d.Get("usage_type"), d.Get("project"), d.Get("api_key"), d.Get("person"), d.Get("attribution"),
					uint64(r.InputTokens), uint64(r.InputCachedTokens), uint64(r.OutputTokens), uint64(r.NumModelRequests),
					r.EstimatedUSD, boolByte(r.Unpriced), boolByte(r.Provisional)); err != nil {
					return err
				}
			}
			return nil
		},
		"costs_daily": func(add func(...any) error) error {
			for _, r := range costs {
				day, err := time.Parse(time.DateOnly, r.Dims.Get("day"))
				if err != nil {
					return fmt.Errorf("cost day %q: %w", r.Dims.Get("day"), err)
				}
				if err := add(day, r.Dims.Get("vendor"), r.Dims.Get("project"), r.Dims.Get("line_item"), r.Amount, boolByte(r.Restated)); err != nil {
					return err
				}
			}
			return nil
		},
		"integrity": func(add func(...any) error) error {
			return add(now.UTC().Truncate(time.Second), seq, hash, anchor.Seq, seq-min(anchor.Seq, seq),
				anchor.Index, anchor.LogIndex, anchor.IntegratedTime.UTC(), anchor.LogURL)
		},
	}
	for _, t := range dashboardTables {
		if err := s.swapIn(ctx, tdb, t.name, t.columns, t.order, fill[t.name]); err != nil {
			return fmt.Errorf("dashboards of %s: %s: %w", tenant, t.name, err)
		}
	}
	return nil
}

// swapIn writes a new copy of tdb.name beside it and renames it into place.
func (s *Store) swapIn(ctx context.Context, tdb, name string, columns []string, order string, fill func(add func(...any) error) error) error {
	table, next, old := tdb+"."+name, tdb+"."+name+"_next", tdb+"."+name+"_old"
	for _, stmt := range []string{"DROP TABLE IF EXISTS " + next, "DROP TABLE IF EXISTS " + old,
		fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = MergeTree ORDER BY %s", next, strings.Join(columns, ", "), order)} {
		if err := s.exec(ctx, stmt); err != nil {
			return err
		}
	}
	var cols []string
	for _, c := range columns {
		cols = append(cols, strings.Fields(c)[0])
	}
	if err := s.batch(ctx, "INSERT INTO "+next+" ("+strings.Join(cols, ", ")+")", fill); err != nil {
		return err
	}
	exists, err := s.tableExists(ctx, tdb, name)
	if err != nil {
		return err
	}
	if !exists {
		return s.exec(ctx, "RENAME TABLE "+next+" TO "+table)
	}
	if err := s.exec(ctx, "RENAME TABLE "+table+" TO "+old+", "+next+" TO "+table); err != nil {
		return err
	}
	return s.exec(ctx, "DROP TABLE IF EXISTS "+old)
}

func (s *Store) tableExists(ctx context.Context, db, table string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// DashboardTenants returns the tenants the ledger holds events of.
func (s *Store) DashboardTenants(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT tenant FROM events ORDER BY tenant")
	if err != nil {
		return nil, fmt.Errorf("tenants of the ledger: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DashboardsConfig configures the dashboards refresher.
type DashboardsConfig struct {
	// Interval is the time between two refreshes of every tenant's
	// dashboard database. Default 5 minutes.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Dashboards keeps every tenant's dashboard database fresh.
type Dashboards struct {
	cfg   DashboardsConfig
	store *Store
	log   *slog.Logger
}

// NewDashboards returns a refresher of store's dashboard databases; a nil
// logger discards.
func NewDashboards(cfg DashboardsConfig, store *Store, logger *slog.Logger) *Dashboards {
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dashboards{cfg: cfg, store: store, log: logger.With("component", "dashboards")}
}

// Run refreshes every tenant's dashboard database now and then every
// Interval, until ctx ends. A tenant that fails is logged and tried again
// at the next round: dashboards lag, the ledger is untouched.
func (d *Dashboards) Run(ctx context.Context) error {
	return d.store.everyTenant(ctx, d.cfg.Interval, d.log, "dashboards", func(ctx context.Context, tenant string) error {
		return d.store.RefreshDashboards(ctx, tenant, d.cfg.Now())
	})
}

// everyTenant calls refresh with every tenant of the ledger now and then
// every interval, until ctx ends. A tenant that fails is logged as what
// was not refreshed, and tried again at the next round.
func (s *Store) everyTenant(ctx context.Context, interval time.Duration, log *slog.Logger, what string, refresh func(ctx context.Context, tenant string) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		tenants, err := s.DashboardTenants(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, what+" not refreshed", "err", err)
		}
		for _, tenant := range tenants {
			if control.CheckTenantID(tenant) != nil {
				continue // not a tenant ogma.control admits: nothing of ours
			}
			start := time.Now()
			if err := refresh(ctx, tenant); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				log.WarnContext(ctx, what+" not refreshed", "tenant", tenant, "err", err)
				continue
			}
			log.DebugContext(ctx, what+" refreshed", "tenant", tenant, "duration", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// GrantDashboardLogin gives tenant's dashboard login, with password, read
// access to the tenant's dashboard database alone. A server with SQL
// access management (ClickHouse 20.5 and later) gets the user and grant
// by SQL; older ones (18.16) take users from their configuration files,
// so usersXML is returned instead, to be placed in the server's users.d
// directory, and nothing is executed.
func (s *Store) GrantDashboardLogin(ctx context.Context, tenant, password string) (usersXML string, err error) {
	if err := control.CheckTenantID(tenant); err != nil {
		return "", err
	}
	tdb, login := s.TenantDatabase(tenant), DashboardLogin(tenant)
	if err := s.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+tdb); err != nil {
		return "", fmt.Errorf("dashboard login of %s: %w", tenant, err)
	}
	sum := sha256.Sum256([]byte(password))
	digest := hex.EncodeToString(sum[:])
	sqlUsers, err := s.sqlAccessManagement(ctx)
	if err != nil {
		return "", fmt.Errorf("dashboard login of %s: %w", tenant, err)
	}
	if !sqlUsers {
		return fmt.Sprintf(`<yandex>
  <!-- Ogma's dashboard login of tenant %s: reads its dashboard database alone. -->
  <users>
    <%s>
      <password_sha256_hex>%s</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
      <allow_databases><database>%s</database></allow_databases>
    </%s>
  </users>
</yandex>
`, tenant, login, digest, tdb, login), nil
	}
	for _, stmt := range []string{
		fmt.Sprintf("CREATE USER IF NOT EXISTS %s IDENTIFIED WITH sha256_hash BY '%s' DEFAULT DATABASE %s SETTINGS readonly = 1", login, digest, tdb),
		fmt.Sprintf("ALTER USER %s IDENTIFIED WITH sha256_hash BY '%s'", login, digest),
		fmt.Sprintf("GRANT SELECT ON %s.* TO %s", tdb, login),
	} {
		if err := s.exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("dashboard login of %s: %w", tenant, err)
		}
	}
	return "", nil
}

// sqlAccessManagement reports whether the server manages users by SQL
// (CREATE USER, GRANT): ClickHouse 20.5 and later.
func (s *Store) sqlAccessManagement(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var v string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return false, err
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false, fmt.Errorf("server version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("server version %q", v)
	}
	return major > 20 || major == 20 && minor >= 5, nil
}
