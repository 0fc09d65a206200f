package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
	"github.com/ogma-dev/ogma/sinks/rekor/rekortest"
)

// Issue 15: the roles run as separate processes — connect, two process,
// sink clickhouse, sink rekor and api — against one broker and one
// ClickHouse, each healthy on its own /healthz; what they make of the
// simulated organizations (usage per day, vendor and model; billed costs;
// each person's usage) equals what `ogma dev` makes of them, and the rekor
// sink anchors the tenant's chain.
func TestRolesAsProcessesEqualDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ogma dev, then six ogma processes")
	}
	if raceEnabled {
		// Six race-instrumented processes take minutes; `make test` runs
		// this test in its second, uninstrumented pass, with the crash
		// harness.
		t.Skip("runs without -race")
	}
	rekorURL := rekortest.URL(t)
	devNow := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	today := devNow.Truncate(24 * time.Hour)
	// ogma tenant create connects at the real clock, so the roles' tenant
	// reads history from 90 days before the real today, later than ogma
	// dev's demo tenant: compare what both read.
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -89)

	// The reference: ogma dev, every role in one process.
	dev, err := startDevAt(t, devNow, t.TempDir(), chtest.NewDB(t).Database)
	if err != nil {
		t.Fatal(err)
	}
	devTok := devToken(t, dev)
	settled(t, dev, devTok, today)
	var want map[string]string
	same := 0
	wait.Until(t, "ogma dev's results to stop changing", func() bool {
		now := results(t, dev, devTok, from, today)
		if maps.Equal(now, want) {
			same++
		} else {
			want, same = now, 0
		}
		return same == 3
	})
	dev.stop(t)
	if len(want) < 100 {
		t.Fatalf("ogma dev shows %d results, want at least 100: %v", len(want), want)
	}
	t.Logf("ogma dev: %s usage, cost and people rows", want["rows"])

	// The same organizations, served by simulators of the same seed and clock.
	started := time.Now()
	clock := func() time.Time { return devNow.Add(time.Since(started)) }
	oa := httptest.NewServer(openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers, Now: clock}))
	defer oa.Close()
	an := httptest.NewServer(anthropicsim.New(devAnthropicSim(devSeed, testUsers, clock)))
	defer an.Close()

	c := topictest.New(t)
	dir := t.TempDir()
	masterKey := filepath.Join(dir, "master.key")
	if _, err := seal.CreateKeyFile(masterKey); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OGMA_KAFKA_BROKERS": c.Broker.Addrs()[0], "OGMA_MASTER_KEY_FILE": masterKey}
	keys := map[string]string{
		"openai":    openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers}).Key(openaisim.KeyFull),
		"anthropic": anthropicsim.New(devAnthropicSim(devSeed, testUsers, clock)).Key(anthropicsim.KeyAdmin),
	}
	args := []string{"tenant", "create", "--id", demoTenant, "--name", "Demo"}
	for vendor, key := range keys {
		f := filepath.Join(dir, vendor+".key")
		os.WriteFile(f, []byte(key), 0o600)
		args = append(args, "--"+vendor+"-admin-key-file", f)
	}
	if out, err := ogma(t, env, args...); err != nil {
		t.Fatalf("tenant create = %q, %v", out, err)
	}
	tok, err := ogma(t, env, "token", "create", "--tenant", demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)

	db := chtest.NewDB(t).Database
	ch := []string{"--clickhouse", chtest.Addr(), "--clickhouse-db", db}
	vendors := []string{"--openai-base-url", oa.URL, "--anthropic-base-url", an.URL}
	apiHTTP := freePort(t)
	health := map[string]string{}
	role := func(name string, args ...string) {
		addr := freePort(t)
		if name == "api" {
			addr = apiHTTP
		} else {
			args = append(args, "--metrics-addr", addr)
		}
		health[name] = "http://" + addr + "/healthz"
		var kills, selfKills atomic.Int64
		supervise(t, name, &kills, &selfKills, append(args, "--kafka-brokers", c.Broker.Addrs()[0],
			"--master-key-file", masterKey, "--log-format", "text")...)
	}
	t.Setenv(envNow, devNow.Format(time.RFC3339)) // the roles' clock, as startDevAt gives ogma dev
	role("connect", append([]string{"connect"}, vendors...)...)
	role("process-0", "process", "--process-id", "p0", "--process-instance-id", "p0", "--process-state-dir", filepath.Join(dir, "p0"))
	role("process-1", "process", "--process-id", "p1", "--process-instance-id", "p1", "--process-state-dir", filepath.Join(dir, "p1"))
	role("sink-clickhouse", append([]string{"sink", "clickhouse"}, ch...)...)
	role("sink-rekor", "sink", "rekor", "--rekor-url", rekorURL, "--anchor-interval", "2s")
	role("api", append(append([]string{"api", "--http", apiHTTP, "--grpc", freePort(t), "--rekor-url", rekorURL}, ch...), vendors...)...)
	for name, url := range health {
		wait.Until(t, name+" healthy", func() bool { _, err := ogma(t, nil, "healthcheck", "--url", url); return err == nil })
	}

	roles := &devRun{http: apiHTTP}
	settled(t, roles, tok, today)
	wait.Until(t, "the roles' results to equal ogma dev's", func() bool {
		got := results(t, roles, tok, from, today)
		if maps.Equal(got, want) {
			return true
		}
		var diff []string
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got[k] != want[k] && len(diff) < 8 {
				diff = append(diff, fmt.Sprintf("%s: roles %q, dev %q", k, got[k], want[k]))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if _, ok := want[k]; !ok && len(diff) < 12 {
				diff = append(diff, fmt.Sprintf("%s: roles %q, dev has none", k, got[k]))
			}
		}
		t.Logf("differences:\n%s", strings.Join(diff, "\n"))
		return false
	})
	wait.Until(t, "the rekor sink to anchor the tenant's chain", func() bool {
		_, body := roles.get(t, "/v1/integrity", tok)
		var in struct {
			LastAnchor *struct{ Seq string } `json:"last_anchor"`
		}
		json.Unmarshal([]byte(body), &in)
		return in.LastAnchor != nil && in.LastAnchor.Seq != "" && in.LastAnchor.Seq != "0"
	})
}

// devToken returns the demo tenant's token that ogma dev wrote.
func devToken(t *testing.T, d *devRun) string {
	t.Helper()
	for _, l := range strings.Split(d.stdout.String(), "\n") {
		if i := strings.Index(l, "#token="); i >= 0 {
			return strings.Fields(l[i+len("#token="):])[0]
		}
	}
	t.Fatalf("ogma dev printed no token:\n%s", d.stdout.String())
	return ""
}

// settled waits until every usage stream of both vendors is settled up to
// today (the backfill done and in ClickHouse).
func settled(t *testing.T, d *devRun, tok string, today time.Time) {
	t.Helper()
	for _, vendor := range []string{"openai", "anthropic"} {
		wait.Until(t, vendor+" usage settled through today", func() bool {
			_, body := d.get(t, "/v1/usage?vendor="+vendor+"&start="+today.AddDate(0, 0, -1).Format(time.DateOnly)+
				"&end="+today.Format(time.DateOnly), tok)
			var r struct {
				CompleteThrough string `json:"complete_through"`
			}
			json.Unmarshal([]byte(body), &r)
			return r.CompleteThrough >= today.Format(time.RFC3339)
		})
	}
}

// results flattens what an installation shows of the tenant over the
// settled days: usage per day, vendor and model; billed cost per day,
// vendor and project (costs settle two days later); each person's tokens.
func results(t *testing.T, d *devRun, tok string, from, today time.Time) map[string]string {
	t.Helper()
	out := map[string]string{}
	get := func(path string, v any) {
		status, body := d.get(t, path, tok)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		json.Unmarshal([]byte(body), v)
	}
	window := "start=" + from.Format(time.DateOnly) + "&end=" + today.Format(time.DateOnly)
	var usage struct{ Rows []map[string]any }
	get("/v1/usage?group_by=day,vendor,model&page_size=10000&"+window, &usage)
	for _, r := range usage.Rows {
		out[fmt.Sprintf("usage %v %v %v", r["day"], r["vendor"], r["model"])] = fmt.Sprint(r["input_total"], " ", r["output"], " ", r["requests"], " ", r["estimated_cost_usd"])
	}
	var costs struct{ Rows []map[string]any }
	get("/v1/costs?group_by=day,vendor,project&start="+from.Format(time.DateOnly)+"&end="+today.AddDate(0, 0, -2).Format(time.DateOnly), &costs)
	for _, r := range costs.Rows {
		out[fmt.Sprintf("cost %v %v %v", r["day"], r["vendor"], r["project"])] = fmt.Sprint(r["amount"], " ", r["currency"], " ", r["restated"])
	}
	var people struct {
		People []struct {
			Email      string
			InputTotal json.Number `json:"input_total"`
			Output     json.Number `json:"output"`
		}
	}
	get("/v1/people?"+window, &people)
	for _, p := range people.People {
		out["person "+p.Email] = p.InputTotal.String() + " " + p.Output.String()
	}
	out["rows"] = strconv.Itoa(len(usage.Rows)) + " " + strconv.Itoa(len(costs.Rows)) + " " + strconv.Itoa(len(people.People))
	return out
}
