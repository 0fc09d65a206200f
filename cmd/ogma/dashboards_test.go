package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// dashboard is what a test reads of a shipped Grafana dashboard.
type dashboard struct {
	Title  string
	Panels []struct {
		Title, Description string
		Targets            []struct {
			RawSQL string `json:"rawSql"`
		}
	}
}

// loadDashboards reads every dashboard of deploy/dashboards, by file name.
func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(deployDir, "dashboards", "*.json"))
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// declaredColumns is what a panel's description says its SQL returns:
// "Columns: name Type, name Type."
var declaredColumns = regexp.MustCompile(`Columns: (.+)\.$`)

// Issue 15: every panel of the shipped dashboards runs, as a tenant's
// dashboard login, against that tenant's dashboard database of a seeded
// org (ogma dev, both simulators) in the real ClickHouse, and returns rows
// of the columns and types its description declares; one tenant's login
// reads neither another tenant's database nor the shared tables.
func TestDashboardsRunAsAPerTenantLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ogma dev")
	}
	users := chtest.UsersDir(t)
	dataDir, cfg := t.TempDir(), chtest.NewDB(t)
	devNow := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d, err := startDevAt(t, devNow, dataDir, cfg.Database, "--dashboards-interval", "2s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	admin, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// A second tenant with its own data, from the same simulated org.
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers}).Key(openaisim.KeyFull)), 0o600)
	if _, err := ogma(t, nil, "tenant", "create", "--id", "acme-corp", "--name", "Acme", "--openai-admin-key-file", keyFile, "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	tdb := func(tenant string) string { return cfg.Database + "_tenant_" + strings.ReplaceAll(tenant, "-", "_") }
	t.Cleanup(func() {
		for _, tenant := range []string{demoTenant, "acme-corp"} {
			admin.Exec(t.Context(), "DROP DATABASE IF EXISTS "+tdb(tenant))
			os.Remove(filepath.Join(users, clickhouse.DashboardLogin(tenant)+".xml"))
		}
	})
	count := func(table string) uint64 {
		var n uint64
		admin.QueryRow(t.Context(), "SELECT count() FROM "+table).Scan(&n)
		return n
	}
	macros := strings.NewReplacer(
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", devNow.AddDate(0, 0, -30).Unix()),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", devNow.Unix()))
	dashes := loadDashboards(t)
	// Until the backfill reaches the panels' window, and the directory is
	// read (people, unmapped keys), some panels are empty.
	wait.Until(t, "every panel to have rows in demo's dashboard database", func() bool {
		for _, dash := range dashes {
			for _, p := range dash.Panels {
				sql := strings.ReplaceAll(macros.Replace(p.Targets[0].RawSQL), "FROM ", "FROM "+tdb(demoTenant)+".")
				if count("("+sql+")") == 0 {
					return false
				}
			}
		}
		return true
	})
	wait.Until(t, "acme-corp's dashboard database", func() bool { return count(tdb("acme-corp")+".usage_daily") > 0 })

	// A login per tenant, each with its own password.
	login := func(tenant string) ch.Conn {
		t.Helper()
		pw := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pw, []byte("pw-of-"+tenant+"\n"), 0o600)
		if out, err := ogma(t, nil, "dashboards", "login", "--tenant", tenant, "--users-dir", users, "--password-file", pw,
			"--clickhouse", cfg.Addr, "--clickhouse-db", cfg.Database); err != nil {
			t.Fatalf("dashboards login --tenant %s = %q, %v", tenant, out, err)
		}
		conn, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}, Auth: ch.Auth{Database: tdb(tenant),
			Username: clickhouse.DashboardLogin(tenant), Password: "pw-of-" + tenant}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wait.Until(t, tenant+"'s login to be loaded (the server reads "+users+")", func() bool {
			return conn.Ping(t.Context()) == nil
		})
		return conn
	}
	demo, acme := login(demoTenant), login("acme-corp")

	panels := 0
	for file, dash := range dashes {
		for _, p := range dash.Panels {
			panels++
			where := file + ": " + p.Title
			m := declaredColumns.FindStringSubmatch(p.Description)
			if m == nil || len(p.Targets) != 1 {
				t.Errorf("%s: declares no columns, or has %d queries", where, len(p.Targets))
				continue
			}
			rows, err := demo.Query(t.Context(), macros.Replace(p.Targets[0].RawSQL))
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			var got []string
			for _, c := range rows.ColumnTypes() {
				got = append(got, c.Name()+" "+c.DatabaseTypeName())
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if want := strings.Split(m[1], ", "); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: columns\n\t%v\nwant (its description)\n\t%v", where, got, want)
			}
			if n == 0 {
				t.Errorf("%s: no rows on the seeded org", where)
			}
		}
	}
	if panels < 10 {
		t.Errorf("%d panels in deploy/dashboards, want usage, cost, people, unmapped activity and integrity's", panels)
	}

	// One tenant's login reads its own database alone.
	var n uint64
	if err := acme.QueryRow(t.Context(), "SELECT count() FROM usage_daily").Scan(&n); err != nil || n == 0 {
		t.Errorf("acme-corp's login on its own usage: %d rows, %v", n, err)
	}
	for _, table := range []string{tdb(demoTenant) + ".usage_daily", tdb(demoTenant) + ".integrity", cfg.Database + ".usage", cfg.Database + ".events"} {
		if err := acme.QueryRow(t.Context(), "SELECT count() FROM "+table).Scan(&n); err == nil || !strings.Contains(err.Error(), "Access denied") {
			t.Errorf("acme-corp's login read %s: %d rows, %v", table, n, err)
		}
	}
}

// The README shows the SQL of every shipped panel (make update-golden
// writes it).
func TestReadmeShowsEveryPanelsSQL(t *testing.T) {
	var want strings.Builder
	dashes := loadDashboards(t)
	for _, file := range slices.Sorted(maps.Keys(dashes)) {
		d := dashes[file]
		fmt.Fprintf(&want, "\n**%s** (`deploy/dashboards/%s`)\n", d.Title, file)
		for _, p := range d.Panels {
			fmt.Fprintf(&want, "\n%s — %s\n\n```sql\n%s\n```\n", p.Title, p.Description, p.Targets[0].RawSQL)
		}
	}
	checkReadmeBlock(t, "dashboards", want.String()+"\n")
}
