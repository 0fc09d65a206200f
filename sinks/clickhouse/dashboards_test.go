package clickhouse_test

import (
	"slices"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// A refresh swaps each dashboard table in whole and leaves nothing beside
// it; a tenant id that ogma.control would not admit never reaches SQL
// (it names databases and users).
func TestRefreshDashboardsSwapsTablesInWhole(t *testing.T) {
	store, cfg := chtest.NewStore(t)
	conn, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tdb := store.TenantDatabase("acme-corp")
	t.Cleanup(func() { conn.Exec(t.Context(), "DROP DATABASE IF EXISTS "+tdb) })
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for range 2 {
		if err := store.RefreshDashboards(t.Context(), "acme-corp", now); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(t.Context(), "SELECT name FROM system.tables WHERE database = ? ORDER BY name", tdb)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if want := []string{"costs_daily", "integrity", "usage_daily"}; !slices.Equal(tables, want) {
		t.Errorf("tables of %s = %v, want %v", tdb, tables, want)
	}
	var head, unanchored uint64
	if err := conn.QueryRow(t.Context(), "SELECT head_seq, unanchored FROM "+tdb+".integrity").Scan(&head, &unanchored); err != nil || head != 0 || unanchored != 0 {
		t.Errorf("integrity of an empty ledger = %d, %d, %v", head, unanchored, err)
	}
	for _, bad := range []string{"acme; DROP TABLE events", "Acme", ""} {
		if err := store.RefreshDashboards(t.Context(), bad, now); err == nil {
			t.Errorf("RefreshDashboards(%q): accepted", bad)
		}
		if _, err := store.GrantDashboardLogin(t.Context(), bad, "pw"); err == nil {
			t.Errorf("GrantDashboardLogin(%q): accepted", bad)
		}
	}
}
