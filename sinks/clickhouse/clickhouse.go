// Package clickhouse keeps Ogma's analytics store: it connects to
// ClickHouse over the native protocol, creates the database, and applies the
// versioned schema migrations (the ledger and its projections).
//
// Everything here runs on Debian's ClickHouse 18.16 as well as on current
// releases: every INSERT names its columns and goes through a prepared batch
// (an Exec of INSERT … VALUES hangs on 18.16), every call has a deadline,
// and the schema avoids what 18.16 lacks (DateTime64, Map, JSON, TTL, CTEs,
// LowCardinality, server-side parameters).
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where the store is.
type Config struct {
	// Addr is the native-protocol address. Default "127.0.0.1:9000".
	Addr string
	// Database is created when missing. Default "ogma".
	Database string
	// Username and Password authenticate; default "default" with no password.
	Username string
	Password string
	// TLS, if set, is the client TLS of the connection.
	TLS *tls.Config
	// Timeout bounds each call. Default 30 s.
	Timeout time.Duration
}

func (c *Config) defaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Database == "" {
		c.Database = "ogma"
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if !identifier.MatchString(c.Database) {
		return fmt.Errorf("clickhouse database %q: want letters, digits and '_'", c.Database)
	}
	return nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Store is a connection pool to one Ogma database. It is safe for
// concurrent use.
type Store struct {
	conn    driver.Conn
	db      string
	timeout time.Duration
}

// Open connects to ClickHouse and creates the database when it is missing.
// It does not migrate; see [Store.Migrate].
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	opts := func(db string) *ch.Options {
		return &ch.Options{
			Addr:        []string{cfg.Addr},
			Auth:        ch.Auth{Database: db, Username: cfg.Username, Password: cfg.Password},
			TLS:         cfg.TLS,
			DialTimeout: cfg.Timeout,
			ReadTimeout: cfg.Timeout,
		}
	}
	boot, err := ch.Open(opts("default"))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	defer boot.Close()
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := boot.Exec(cctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database); err != nil {
		return nil, fmt.Errorf("clickhouse %s: create database %s: %w", cfg.Addr, cfg.Database, err)
	}
	conn, err := ch.Open(opts(cfg.Database))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	return &Store{conn: conn, db: cfg.Database, timeout: cfg.Timeout}, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.conn.Close() }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse ping: %w", err)
	}
	return nil
}

// Migration is one versioned step of the schema.
type Migration struct {
	Version int
	Name    string
	// Statements run in order; each must be idempotent (IF NOT EXISTS), so
	// that a migration cut short can simply run again.
	Statements []string
}

// ErrNewerSchema is returned when the database holds migrations this
// binary does not know: it is older than the schema.
var ErrNewerSchema = errors.New("clickhouse: the database schema is newer than this binary")

// Migrate applies every migration not yet recorded in schema_migrations, in
// version order, and returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	return s.migrate(ctx, Migrations)
}

func (s *Store) migrate(ctx context.Context, migrations []Migration) ([]int, error) {
	if err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version UInt32, name String, applied_at DateTime('UTC')
	) ENGINE = ReplacingMergeTree ORDER BY version`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := s.Applied(ctx)
	if err != nil {
		return nil, err
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	known := map[int]bool{}
	for _, m := range migrations {
		known[m.Version] = true
	}
	for _, v := range applied {
		if !known[v] {
			return nil, fmt.Errorf("%w: version %d is applied", ErrNewerSchema, v)
		}
	}
	var ran []int
	for _, m := range migrations {
		if done[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := s.exec(ctx, stmt); err != nil {
				return ran, fmt.Errorf("migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := s.record(ctx, m); err != nil {
			return ran, err
		}
		ran = append(ran, m.Version)
	}
	return ran, nil
}

// Applied returns the applied migration versions, ascending.
func (s *Store) Applied(ctx context.Context) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out = append(out, int(v))
	}
	return out, rows.Err()
}

func (s *Store) record(ctx context.Context, m Migration) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	if err := b.Append(uint32(m.Version), m.Name, time.Now().UTC()); err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	return nil
}

func (s *Store) exec(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.conn.Exec(ctx, stmt)
}
