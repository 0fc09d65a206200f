package clickhouse_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// Migrations apply once, in order, and are recorded; running them again
// applies nothing.
func TestMigrateIsVersionedAndIdempotent(t *testing.T) {
	cfg := chtest.NewDB(t)
	s, err := clickhouse.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ran, err := s.Migrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var all []int
	for _, m := range clickhouse.Migrations {
		all = append(all, m.Version)
	}
	if !slices.Equal(ran, all) {
		t.Errorf("first Migrate ran %v, want %v", ran, all)
	}
	again, err := s.Migrate(t.Context())
	if err != nil || len(again) != 0 {
		t.Errorf("second Migrate ran %v, %v; want nothing", again, err)
	}
	applied, err := s.Applied(t.Context())
	if err != nil || !slices.Equal(applied, all) {
		t.Errorf("Applied() = %v, %v; want %v", applied, err, all)
	}
}

// A database migrated by a newer binary is refused, not silently used.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	cfg := chtest.NewDB(t)
	s, err := clickhouse.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	future := append(slices.Clone(clickhouse.Migrations), clickhouse.Migration{Version: 999, Name: "future",
		Statements: []string{"CREATE TABLE IF NOT EXISTS future (x UInt8) ENGINE = TinyLog"}})
	if _, err := clickhouse.MigrateTo(t.Context(), s, future); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(t.Context()); !errors.Is(err, clickhouse.ErrNewerSchema) {
		t.Errorf("Migrate on a newer schema = %v, want ErrNewerSchema", err)
	}
}

// A database name goes into DDL unquoted: one that is not an identifier is
// refused by its shape, before anything is dialed (nothing listens on the
// address, so a dial error would mean the name got through).
func TestOpenRejectsBadDatabaseName(t *testing.T) {
	for _, name := range []string{"x; DROP TABLE y", "ogma`", "1db", "a-b", "a b", strings.Repeat("a", 64)} {
		_, err := clickhouse.Open(t.Context(), clickhouse.Config{Addr: "127.0.0.1:1", Database: name, Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "want letters, digits and '_'") {
			t.Errorf("Open(database %q) = %v, want the name refused", name, err)
		}
	}
}

// Migration 12 re-sorts the usage table: every row written before it is
// there after it, once, and reads as before.
func TestUsageResortKeepsEveryRow(t *testing.T) {
	cfg := chtest.NewDB(t)
	s, err := clickhouse.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := slices.IndexFunc(clickhouse.Migrations, func(m clickhouse.Migration) bool { return m.Version == 12 })
	if _, err := clickhouse.MigrateTo(t.Context(), s, clickhouse.Migrations[:before]); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Conn(t, cfg)
	batch, err := conn.PrepareBatch(t.Context(), `INSERT INTO usage (tenant, vendor, stream, key, primary_set, day, bucket_start, model,
		input_tokens, rev, seq, images)`)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i, r := range []struct {
		key    string
		rev    uint32
		tokens int64
	}{{"k1", 0, 100}, {"k1", 1, 150}, {"k2", 0, 7}, {"k2", 0, 7}} { // a revision, and a redelivery
		if err := batch.Append("acme", "openai", "usage.completions", r.key, uint8(1), day, day, "m", r.tokens, r.rev, uint64(i+1), int64(2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Usage(t.Context(), clickhouse.UsageQuery{Tenant: "acme", Start: day, End: day.AddDate(0, 0, 1)})
	if err != nil || len(rows) != 1 || rows[0].InputTokens != 157 || rows[0].Images != 4 {
		t.Errorf("usage after the re-sort = %+v, %v; want k1's latest 150 + k2's 7 tokens, 4 images", rows, err)
	}
}
