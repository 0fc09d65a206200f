package clickhouse_test

import (
	"errors"
	"slices"
	"testing"

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

func TestOpenRejectsBadDatabaseName(t *testing.T) {
	_, err := clickhouse.Open(t.Context(), clickhouse.Config{Database: "x; DROP TABLE y"})
	if err == nil {
		t.Fatal("Open accepted a database name that is not an identifier")
	}
}
