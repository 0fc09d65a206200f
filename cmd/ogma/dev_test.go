package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
	"github.com/ogma-dev/ogma/sinks/rekor"
	"github.com/ogma-dev/ogma/sinks/rekor/rekortest"
)

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testUsers sizes the simulated organization of in-process `ogma dev`
// runs: big enough to page the users list, and with Anthropic's extra
// people over 150 (issue 13's seeded organization), small enough for -race.
const testUsers = 150

// devRun is one `ogma dev` running in-process.
type devRun struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
	http, kafka    string
}

var (
	restURL  = regexp.MustCompile(`REST\s+http://(\S+)`)
	kafkaURL = regexp.MustCompile(`Kafka\s+(\S+)`)
)

// startDev runs `ogma dev` with args on free ports and waits until it has
// printed its banner, or until it exits.
func startDev(t testing.TB, dataDir, db string, args ...string) (*devRun, error) {
	t.Helper()
	return startDevAt(t, time.Time{}, dataDir, db, args...)
}

// startDevAt is startDev with the simulator and the connector on a clock
// that starts at now and runs (the real clock when now is zero): 12:00 UTC
// gives a test twelve hours before its day ends.
func startDevAt(t testing.TB, now time.Time, dataDir, db string, args ...string) (*devRun, error) {
	t.Helper()
	return startDevWith(t, now, nil, dataDir, db, args...)
}

// startDevWith is startDevAt, with sim told the OpenAI simulator before it
// serves.
func startDevWith(t testing.TB, now time.Time, sim func(*openaisim.Server), dataDir, db string, args ...string) (*devRun, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	d := &devRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	var r runners
	if !now.IsZero() {
		started := time.Now()
		r.dev = func(ctx context.Context, cfg *devConfig) error {
			cfg.now = func() time.Time { return now.Add(time.Since(started)) }
			cfg.openaiSim = sim
			return runDev(ctx, cfg)
		}
	}
	root := newRootCmd(envOf(nil), r)
	root.SetOut(d.stdout)
	root.SetErr(d.stderr)
	root.SetArgs(append([]string{"dev", "--data-dir", dataDir, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0",
		"--kafka-listen", "127.0.0.1:0", "--sim-addr", "127.0.0.1:0", "--anthropic-sim-addr", "127.0.0.1:0", "--sim-users", strconv.Itoa(testUsers),
		"--clickhouse", chtest.Addr(), "--clickhouse-db", db,
		"--log-level", "debug"}, args...))
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		d.done <- root.ExecuteContext(ctx)
	}()
	// Whatever happens, the process is gone before the test's temp dirs are.
	t.Cleanup(func() { cancel(); <-exited })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-d.done:
			cancel()
			return nil, err
		default:
		}
		if m := restURL.FindStringSubmatch(d.stdout.String()); m != nil {
			d.http = m[1]
			d.kafka = kafkaURL.FindStringSubmatch(d.stdout.String())[1]
			return d, nil
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("ogma dev printed no banner within 60 s; stderr:\n%s", d.stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition under a deadline
	}
}

// stop stops the process and checks it exited cleanly.
func (d *devRun) stop(t testing.TB) {
	t.Helper()
	d.cancel()
	if err := <-d.done; err != nil && !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("ogma dev exited with %v", err)
	}
}

func (d *devRun) get(t testing.TB, path, token string) (int, string) {
	t.Helper()
	status, b := d.do(t, http.MethodGet, path, token, "")
	return status, string(b)
}

// do sends a request to the API with token (when not empty) and body and
// returns the status and body of the answer.
func (d *devRun) do(t testing.TB, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+d.http+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metric returns the sum of a counter's samples whose labels contain every
// given pair, from /metrics.
func (d *devRun) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	_, body := d.get(t, "/metrics", "")
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			ok = ok && strings.Contains(line, labels[i]+`="`+labels[i+1]+`"`)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			sum += v
		}
	}
	return sum
}

func rawRecords(t *testing.T, kafka string, name string) []*kgo.Record {
	t.Helper()
	dial := topic.Seeds([]string{kafka})
	l, err := topic.Ensure(t.Context(), dial, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	parts := topic.Partitions(l.Partitions)
	if name == topic.Anchors {
		parts = []int32{0}
	}
	if err := topic.ReadToEnd(t.Context(), dial, name, parts, func(r *kgo.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Issue 2: `ogma dev` serves /me/capabilities with openai.admin true; a
// restart on the same data dir keeps topics, records, cursors and group
// offsets, and does not backfill again; a mismatched partition count is
// refused with a clear message; kcat lists the topics; and the sealed key
// is nowhere in clear.
func TestDevEndToEndAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system twice")
	}
	dataDir := t.TempDir()
	db := chtest.NewDB(t).Database
	// The simulator and the connector run on a clock that starts at a fixed
	// noon, so that the windows compared below do not depend on today's
	// date, nor on a midnight passing during the test.
	devNow := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d, err := startDevAt(t, devNow, dataDir, db, "--kafka-partitions", "3")
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(dataDir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dataDir, "token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(dataDir, "master.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("master key mode %v, want 0600", fi.Mode().Perm())
	}
	tok := strings.TrimSpace(string(token))
	wait.Until(t, "/healthz 200", func() bool { s, _ := d.get(t, "/healthz", ""); return s == 200 })
	// Issue 12: both vendors' blocks, each flag as the simulators make it.
	wait.Until(t, "openai.admin and every anthropic flag true", func() bool {
		_, body := d.get(t, "/me/capabilities", tok)
		var caps struct {
			Openai    struct{ Admin bool }
			Anthropic struct {
				Admin, Costs, Workspaces bool
				ClaudeCode               bool `json:"claude_code"`
				PerUserBreakdown         bool `json:"per_user_breakdown"`
			}
		}
		json.Unmarshal([]byte(body), &caps)
		a := caps.Anthropic
		return caps.Openai.Admin && a.Admin && a.Costs && a.ClaudeCode && a.PerUserBreakdown && a.Workspaces
	})
	if s, _ := d.get(t, "/me/capabilities", ""); s != http.StatusUnauthorized {
		t.Errorf("/me/capabilities without a token = %d, want 401", s)
	}
	for _, stream := range []string{"usage.completions", "users", "projects", "project_api_keys"} {
		wait.Until(t, stream+" polled", func() bool {
			return d.metric(t, "ogma_connector_polls_total", "stream", stream, "result", "ok") >= 1
		})
	}

	// Issue 3: /v1/usage over the 90-day window equals the simulator's own
	// totals, grouped by model and by user; today's open bucket is there,
	// flagged provisional.
	sim := openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers, Now: func() time.Time { return devNow }})
	today := devNow.Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -90)
	for _, dim := range []string{"model", "user"} {
		want := simTokens(sim, start, today, dim)
		wait.Until(t, "/v1/usage by "+dim+" to equal the simulator", func() bool {
			got := map[string]int64{}
			for _, r := range d.usage(t, tok, start, today, dim+"&vendor=openai") {
				got[r.dims[dim]] += r.input + r.output
			}
			// Groups with no tokens (vector stores, images…) are not compared.
			maps.DeleteFunc(got, func(_ string, v int64) bool { return v == 0 })
			maps.DeleteFunc(want, func(_ string, v int64) bool { return v == 0 })
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Logf("by %s: got  %v\nwant %v", dim, got, want)
			}
			return fmt.Sprint(got) == fmt.Sprint(want)
		})
	}
	// People: usage of each user the directory lists is theirs, by email.
	emails := map[string]string{}
	for _, u := range sim.Users() {
		emails[u.ID] = strings.ToLower(u.Email)
	}
	wait.Until(t, "the usage of listed users to be attributed to their email", func() bool {
		checked := 0
		for _, r := range d.usage(t, tok, start, today, "user,person,attribution&vendor=openai") {
			if email, listed := emails[r.dims["user"]]; listed {
				if r.dims["person"] != api.PersonID(demoTenant, email) || r.dims["attribution"] != "user" {
					return false
				}
				checked++
			}
		}
		return checked > 0
	})
	wait.Until(t, "a provisional row for today", func() bool {
		for _, r := range d.usage(t, tok, today, today.Add(24*time.Hour), "day") {
			if r.provisional && r.dims["day"] == today.Format(time.DateOnly) && r.input > 0 {
				return true
			}
		}
		return false
	})
	if s, body := d.get(t, "/v1/usage?start=2026-01-02&end=2026-01-01", tok); s != http.StatusBadRequest || !strings.Contains(body, "must be after start") {
		t.Errorf("a reversed window = %d %s, want 400 naming the problem", s, body)
	}
	checkPeopleAcrossVendors(t, d, tok, sim, anthropicsim.New(devAnthropicSim(devSeed, testUsers, func() time.Time { return devNow })), start, today)

	// Settled costs reach ClickHouse to the exact cent fraction the vendor sent.
	wantCost := decimal.Zero
	costStart, costEnd := today.AddDate(0, 0, -90), today.AddDate(0, 0, -2)
	for day := costStart; day.Before(costEnd); day = day.Add(24 * time.Hour) {
		for _, c := range sim.Costs(day, openaisim.CostsGroupBy) {
			text, _ := json.Marshal(c.Amount.Value)
			wantCost = wantCost.Add(decimal.RequireFromString(string(text)))
		}
	}
	wait.Until(t, "costs in ClickHouse to equal the simulator's, exactly", func() bool {
		return costSum(t, db, stream.OpenAI, costStart, costEnd).Equal(wantCost)
	})
	// Anthropic's amounts are cents: in ClickHouse they are dollars, exactly.
	an := anthropicsim.New(devAnthropicSim(devSeed, testUsers, func() time.Time { return devNow }))
	wantCost = decimal.Zero
	for day := costStart; day.Before(costEnd); day = day.Add(24 * time.Hour) {
		for _, c := range an.Costs(day, stream.Must(stream.Anthropic, "costs").GroupSet) {
			wantCost = wantCost.Add(decimal.RequireFromString(c.Amount).Div(decimal.NewFromInt(100)))
		}
	}
	wait.Until(t, "Anthropic costs in ClickHouse to equal the simulator's cents as dollars", func() bool {
		return wantCost.IsPositive() && costSum(t, db, stream.Anthropic, costStart, costEnd).Equal(wantCost)
	})
	// Issue 13: /v1/costs answers the same exact amounts.
	var costs struct {
		Rows []struct{ Vendor, Amount, Currency string }
	}
	_, body := d.get(t, "/v1/costs?start="+costStart.Format(time.DateOnly)+"&end="+costEnd.Format(time.DateOnly)+"&group_by=vendor", tok)
	json.Unmarshal([]byte(body), &costs)
	if i := slices.IndexFunc(costs.Rows, func(r struct{ Vendor, Amount, Currency string }) bool { return r.Vendor == stream.Anthropic }); i < 0 ||
		costs.Rows[i].Amount != wantCost.String() || costs.Rows[i].Currency != "usd" {
		t.Errorf("/v1/costs by vendor = %s, want anthropic %s usd", body, wantCost)
	}
	// The month's forecast: billed so far, exactly, then the projection
	// with its interval, for each vendor.
	var fc struct {
		Month   string
		Vendors []struct {
			Vendor, Method, Through string
			SpentToDate             string `json:"spent_to_date"`
			ForecastTotal           string `json:"forecast_total"`
			Low, High               string
		}
	}
	_, body = d.get(t, "/v1/insights/forecast?month=2026-11", tok)
	json.Unmarshal([]byte(body), &fc)
	if len(fc.Vendors) != 2 {
		t.Errorf("/v1/insights/forecast = %s, want both vendors", body)
	}
	for _, v := range fc.Vendors {
		through, _ := time.Parse(time.DateOnly, v.Through)
		spent := costSum(t, db, v.Vendor, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), through.AddDate(0, 0, 1))
		num := func(s string) decimal.Decimal { return decimal.RequireFromString(s) }
		if v.Method != "ols_trend_weekday" || !num(v.SpentToDate).Equal(spent) || num(v.ForecastTotal).LessThan(spent) ||
			num(v.Low).GreaterThan(num(v.ForecastTotal)) || num(v.High).LessThan(num(v.ForecastTotal)) {
			t.Errorf("forecast of %s = %+v, want spent %s billed through %s and an interval around a total past it", v.Vendor, v, spent, v.Through)
		}
	}
	// The model mix holds both vendors' models, their token shares whole.
	var mix struct {
		Models []struct {
			Vendor, Model string
			TokenShare    float64 `json:"token_share"`
		}
	}
	_, body = d.get(t, "/v1/insights/model-mix?start="+start.AddDate(0, 0, 45).Format(time.DateOnly)+"&end="+today.Format(time.DateOnly), tok)
	json.Unmarshal([]byte(body), &mix)
	vendors, whole := map[string]bool{}, 0.0
	for _, m := range mix.Models {
		vendors[m.Vendor] = true
		whole += m.TokenShare
	}
	if !vendors[stream.OpenAI] || !vendors[stream.Anthropic] || math.Abs(whole-1) > 1e-6 {
		t.Errorf("/v1/insights/model-mix = %s, want both vendors' models, shares summing to 1", body)
	}
	checkProjectsAndReconciliation(t, d, tok, costStart, today)
	checkUnitsEqualSimulators(t, d, tok, sim, an, start, today)
	if n := d.metric(t, "ogma_processor_records_total", "outcome", "deadlettered"); n != 0 {
		t.Errorf("%v raw records were deadlettered on the happy path", n)
	}
	checkReadmeListsMetrics(t, d)
	checkReadmeSample(t, "/me/capabilities", d, tok)
	ledgerBefore := verifyLedger(t, db)

	// kcat, a librdkafka client, lists every topic of the embedded broker.
	out, err := exec.CommandContext(t.Context(), "kcat", "-L", "-b", d.kafka, "-m", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L (make test installs kcat): %v\n%s", err, out)
	}
	for _, s := range topic.All {
		if !strings.Contains(string(out), `topic "`+s.Name+`"`) {
			t.Errorf("kcat -L does not list %s:\n%s", s.Name, out)
		}
	}

	// A group offset committed now must survive the restart.
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.kafka))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic.Raw, Partition: 0, At: 1})
	if _, err := adm.CommitOffsets(t.Context(), "restart-probe", offs); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	before := rawRecords(t, d.kafka, topic.Raw)
	cursors := rawRecords(t, d.kafka, topic.Cursors)
	d.stop(t)

	// Restart on the same data dir, now with the key of another
	// organization (another simulator seed): the key is re-sealed as a new
	// generation, and the other org's data makes new events on the chain.
	d, err = startDevAt(t, devNow, dataDir, db, "--sim-seed", "2")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dataDir, "token")); string(got) != string(token) {
		t.Error("restart replaced a live token")
	}
	wait.Until(t, "a usage poll after restart", func() bool {
		return d.metric(t, "ogma_connector_polls_total", "stream", "usage.completions", "result", "ok") >= 1
	})
	if s, _ := d.get(t, "/me/capabilities", tok); s != 200 {
		t.Errorf("the token from before the restart gets %d", s)
	}
	after := rawRecords(t, d.kafka, topic.Raw)
	if len(after) < len(before) {
		t.Fatalf("ogma.raw lost records over the restart: %d → %d", len(before), len(after))
	}
	trailing := devNow.Truncate(24*time.Hour).AddDate(0, 0, -3).Unix()
	for _, r := range after[len(before):] {
		raw, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Bucket != nil && raw.Bucket.Start < trailing {
			t.Fatalf("after the restart, bucket %d was published again: a second backfill", raw.Bucket.Start)
		}
	}
	if got := rawRecords(t, d.kafka, topic.Cursors); len(got) < len(cursors) {
		t.Errorf("cursors lost over the restart: %d → %d", len(cursors), len(got))
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(d.kafka))
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := kadm.NewClient(cl).FetchOffsets(t.Context(), "restart-probe")
	cl.Close()
	if o, ok := fetched.Lookup(topic.Raw, 0); err != nil || !ok || o.At != 1 {
		t.Errorf("group offset after restart = %+v (%v), want 1", o, err)
	}
	controlRecs := rawRecords(t, d.kafka, topic.Control)
	eventRecs := rawRecords(t, d.kafka, topic.Events)
	// Issue 3: after the restart, no event is duplicated and seq continues.
	wait.Until(t, "the ledger to take the events after the restart", func() bool {
		return d.metric(t, "ogma_processor_transactions_total", "result", "committed") >= 1
	})
	events := len(rawRecords(t, d.kafka, topic.Events))
	wait.Until(t, "the ledger to hold every event of ogma.events", func() bool { return ledgerCount(t, db) == events })
	if after := verifyLedger(t, db); after <= ledgerBefore || after != events {
		t.Errorf("ledger after the restart: %d events (before %d, in Kafka %d)", after, ledgerBefore, events)
	}
	d.stop(t)

	// A different partition count is refused, clearly.
	_, err = startDevAt(t, devNow, dataDir, db, "--kafka-partitions", "4")
	if err == nil || !strings.Contains(err.Error(), "partition count mismatch") || !strings.Contains(err.Error(), "records 3") {
		t.Errorf("restart with --kafka-partitions 4 = %v, want a partition count mismatch naming 3", err)
	}

	// The sealed keys, of both vendors, are nowhere in clear.
	var secrets []string
	for _, seed := range []int64{devSeed, 2} {
		for _, key := range []string{openaisim.New(openaisim.Config{Seed: seed}).Key(openaisim.KeyFull),
			anthropicsim.New(anthropicsim.Config{Seed: seed}).Key(anthropicsim.KeyAdmin)} {
			secrets = append(secrets, key[len(key)-20:]) // an unredacted tail is a leak too
		}
	}
	check := func(where string, b []byte) {
		for _, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the admin key appears in clear in %s", where)
			}
		}
	}
	for _, recs := range [][]*kgo.Record{after, controlRecs, cursors, eventRecs} {
		for _, r := range recs {
			check(r.Topic+" record "+string(r.Key), append(r.Key, r.Value...))
		}
	}
	check("the log", []byte(d.stderr.String()+d.stdout.String()))
	filepath.WalkDir(dataDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(path)
			check(path, b)
		}
		return nil
	})
}

// checkPeopleAcrossVendors checks issue 12's people: one person per
// lower-cased email over both vendors. Each person in both organizations
// appears once in /v1/people, with the users of both vendors, neither marked
// deleted (a vendor's users walk marks only its own users absent); in
// /v1/usage?group_by=person each vendor's totals of that person equal that
// simulator's own numbers — OpenAI's rows of their user id, Anthropic's rows
// of the keys they hold and their keyless (OAuth) rows by account. A person
// on one vendor only appears once too.
func checkPeopleAcrossVendors(t *testing.T, d *devRun, tok string, oa *openaisim.Server, an *anthropicsim.Server, start, end time.Time) {
	t.Helper()
	oaEmail, anEmail := map[string]string{}, map[string]string{}
	for _, u := range oa.Users() {
		oaEmail[u.ID] = strings.ToLower(u.Email)
	}
	for _, u := range an.Users() {
		anEmail[u.ID] = strings.ToLower(u.Email)
	}
	want := map[string]map[string]int64{stream.OpenAI: {}, stream.Anthropic: {}}
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		for uid, n := range simTokens(oa, day, day.Add(24*time.Hour), "user") {
			if e, ok := oaEmail[uid]; ok {
				want[stream.OpenAI][e] += n
			}
		}
		tokens := func(r anthropicsim.UsageResult) int64 {
			return r.UncachedInputTokens + r.CacheCreation.Ephemeral5m + r.CacheCreation.Ephemeral1h + r.CacheReadInputTokens + r.OutputTokens
		}
		for _, r := range an.Usage(day, stream.Must(stream.Anthropic, "usage.messages").GroupSet) {
			if e, ok := anEmail[an.Holder(deref(r.APIKeyID))]; ok && r.APIKeyID != nil {
				want[stream.Anthropic][e] += tokens(r)
			}
		}
		for _, r := range an.Usage(day, stream.Must(stream.Anthropic, "usage.messages_by_account").GroupSet) {
			if e, ok := anEmail[deref(r.AccountID)]; ok && r.APIKeyID == nil {
				want[stream.Anthropic][e] += tokens(r)
			}
		}
	}
	var both, anthropicOnly []string
	for _, e := range anEmail {
		if slices.Contains(slices.Collect(maps.Values(oaEmail)), e) {
			both = append(both, e)
		} else {
			anthropicOnly = append(anthropicOnly, e)
		}
	}
	if len(both) == 0 || len(anthropicOnly) == 0 {
		t.Fatalf("the simulators share %d people and Anthropic has %d of its own: the check proves nothing", len(both), len(anthropicOnly))
	}
	for _, vendor := range []string{stream.OpenAI, stream.Anthropic} {
		wait.Until(t, vendor+" totals of the people in both organizations to equal the simulator's", func() bool {
			got := map[string]int64{}
			for _, r := range d.usage(t, tok, start, end, "person&vendor="+vendor) {
				got[r.dims["person"]] += r.input + r.output
			}
			ok := true
			for _, e := range both {
				if w := want[vendor][e]; w > 0 && got[api.PersonID(demoTenant, e)] != w {
					t.Logf("%s of %s: got %d, want %d", vendor, e, got[api.PersonID(demoTenant, e)], w)
					ok = false
				}
			}
			return ok
		})
	}
	var people struct {
		People []struct {
			ID, Email string
			Subjects  []struct {
				Vendor, Kind string
				Deleted      bool
			}
		}
	}
	wait.Until(t, "/v1/people to hold every person of both organizations", func() bool {
		_, body := d.get(t, "/v1/people", tok)
		json.Unmarshal([]byte(body), &people)
		n := 0
		for _, p := range people.People {
			if slices.Contains(both, p.Email) || slices.Contains(anthropicOnly, p.Email) {
				n++
			}
		}
		return n == len(both)+len(anthropicOnly)
	})
	seen := map[string]int{}
	for _, p := range people.People {
		seen[p.Email]++
		if !slices.Contains(both, p.Email) {
			continue
		}
		users := map[string]bool{}
		for _, s := range p.Subjects {
			if s.Kind == "user" {
				users[s.Vendor] = true
				if s.Deleted {
					t.Errorf("%s's %s user is marked deleted while a member of both organizations", p.Email, s.Vendor)
				}
			}
		}
		if !users[stream.OpenAI] || !users[stream.Anthropic] {
			t.Errorf("%s is in both organizations, but /v1/people holds their users of %v", p.Email, slices.Collect(maps.Keys(users)))
		}
	}
	for e, n := range seen {
		if n > 1 {
			t.Errorf("%s appears %d times in /v1/people", e, n)
		}
	}
	if len(seen) < 150 {
		t.Errorf("/v1/people holds %d people, want the seeded organization's 150 or more", len(seen))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type usageRow struct {
	dims          map[string]string
	input, output int64
	// units holds the counts other than tokens, by field.
	units       map[string]int64
	provisional bool
}

// unitFields are /v1/usage's counts other than tokens.
var unitFields = []string{"images", "characters", "seconds", "bytes", "sessions", "calls"}

func (d *devRun) usage(t *testing.T, tok string, start, end time.Time, groupBy string) []usageRow {
	t.Helper()
	status, body := d.get(t, "/v1/usage?start="+start.Format(time.DateOnly)+"&end="+end.Format(time.DateOnly)+"&group_by="+groupBy, tok)
	if status != 200 {
		t.Fatalf("/v1/usage = %d %s", status, body)
	}
	var resp struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	var out []usageRow
	for _, r := range resp.Rows {
		u := usageRow{dims: map[string]string{}}
		for _, dim := range []string{"day", "model", "user", "project", "api_key", "person", "attribution", "usage_type", "vendor"} {
			if v, ok := r[dim].(string); ok {
				u.dims[dim] = v
			}
		}
		u.input, _ = strconv.ParseInt(fmt.Sprint(r["input_tokens"]), 10, 64)
		u.output, _ = strconv.ParseInt(fmt.Sprint(r["output_tokens"]), 10, 64)
		u.units = map[string]int64{}
		for _, f := range unitFields {
			u.units[f], _ = strconv.ParseInt(fmt.Sprint(r[f]), 10, 64)
		}
		u.provisional, _ = r["provisional"].(bool)
		out = append(out, u)
	}
	return out
}

// verifyLedger recomputes the ClickHouse ledger independently — hash =
// SHA-256(canonical), prev links, seq contiguous from 1 with no duplicate,
// data_digest = SHA-256(salt ‖ data) — and returns its event count.
func verifyLedger(t *testing.T, db string) int {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{chtest.Addr()}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(t.Context(), "SELECT tenant, seq, prev, hash, canonical, data, salt, data_digest FROM events FINAL ORDER BY tenant, seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	var lastTenant, lastHash string
	var lastSeq uint64
	for rows.Next() {
		var tenant, prev, hash, canonical, data, salt, digest string
		var seq uint64
		if err := rows.Scan(&tenant, &seq, &prev, &hash, &canonical, &data, &salt, &digest); err != nil {
			t.Fatal(err)
		}
		if tenant != lastTenant {
			lastTenant, lastHash, lastSeq = tenant, strings.Repeat("0", 64), 0
		}
		if seq != lastSeq+1 {
			t.Fatalf("%s: seq %d after %d (a gap or a duplicate)", tenant, seq, lastSeq)
		}
		h := sha256.Sum256([]byte(canonical))
		if hex.EncodeToString(h[:]) != hash || prev != lastHash {
			t.Fatalf("%s seq %d: hash or prev does not recompute", tenant, seq)
		}
		s, _ := hex.DecodeString(salt)
		dd := sha256.Sum256(append(s, data...))
		if hex.EncodeToString(dd[:]) != digest || !strings.Contains(canonical, `"data_digest":"`+digest+`"`) {
			t.Fatalf("%s seq %d: data_digest does not recompute", tenant, seq)
		}
		lastHash, lastSeq = hash, seq
		n++
	}
	if n == 0 {
		t.Fatal("the ledger is empty")
	}
	return n
}

func ledgerCount(t testing.TB, db string) int {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{chtest.Addr()}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM events FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func costSum(t *testing.T, db, vendor string, start, end time.Time) decimal.Decimal {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{chtest.Addr()}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var s string
	err = conn.QueryRow(t.Context(), "SELECT toString(sum(amount)) FROM costs FINAL WHERE vendor = ? AND day >= toDate(?) AND day < toDate(?)",
		vendor, start.Format(time.DateOnly), end.Format(time.DateOnly)).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return decimal.RequireFromString(s)
}

// A ClickHouse database outlives its data dir (rm -rf .ogma, then make
// run): ogma dev stops at start, before writing anything, and names both
// ways out, instead of refusing every tenant in silence.
func TestDevRefusesAnotherInstallationsDatabase(t *testing.T) {
	db := chtest.NewDB(t).Database
	first, err := startDev(t, t.TempDir(), db)
	if err != nil {
		t.Fatalf("first installation: %v", err)
	}
	first.stop(t)

	_, err = startDev(t, t.TempDir(), db)
	if err == nil {
		t.Fatal("a second installation started on the first one's database")
	}
	t.Logf("ogma dev: %v", err)
	for _, want := range []string{"holds the ledger of installation", "--clickhouse-db " + db + "_2", "DROP DATABASE " + db} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// The sink's refused tenants are the process's health problems, each
// with its reason.
func TestRefusalsAreHealthProblems(t *testing.T) {
	h := &api.Health{}
	reportRefusals(h)(map[string]string{"globex": "gap", "acme": "another event at seq 3"})
	want := []string{"tenant acme refused: another event at seq 3", "tenant globex refused: gap"}
	if got := h.Problems()["sink_clickhouse"]; !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

var metricName = regexp.MustCompile(`(?m)^(ogma_[a-z_]+)`)

// checkReadmeListsMetrics checks that the README's metrics table names
// every Ogma metric the process serves.
func checkReadmeListsMetrics(t *testing.T, d *devRun) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, body := d.get(t, "/metrics", "")
	for _, m := range metricName.FindAllStringSubmatch(body, -1) {
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")
		if !strings.Contains(string(b), "| `"+name) {
			t.Errorf("the README's metrics table does not list %s", name)
		}
	}
}

// While `ogma dev` runs, the other commands on its data dir find its
// embedded broker without being told; with none running, they say how to
// start one rather than to run what is already running.
func TestCommandsFindTheEmbeddedBrokerOfTheirDataDir(t *testing.T) {
	dataDir := t.TempDir()
	if _, err := ogma(t, nil, "token", "create", "--tenant", "demo", "--data-dir", dataDir); err == nil ||
		!strings.Contains(err.Error(), "start `ogma dev` (make run) on data dir "+dataDir) {
		t.Errorf("token create with no Kafka = %v, want how to start one", err)
	}
	d, err := startDev(t, dataDir, chtest.NewDB(t).Database)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	out, err := ogma(t, nil, "tenant", "create", "--id", "acme", "--name", "Acme", "--data-dir", dataDir)
	if err != nil || strings.TrimSpace(out) != "acme" {
		t.Errorf("tenant create beside ogma dev = %q, %v", out, err)
	}
}

// A first run says when it is usable: once every role is ready, ogma dev
// prints how long that took, and /healthz agrees.
// Without --rekor-url nothing is anchored, and /v1/integrity says so.
func TestDevSaysWhenHealthy(t *testing.T) {
	dataDir := t.TempDir()
	d, err := startDev(t, dataDir, chtest.NewDB(t).Database)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	wait.Until(t, "the healthy line", func() bool { return strings.Contains(d.stdout.String(), "Healthy: every role is ready, ") })
	if status, body := d.get(t, "/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz after the healthy line = %d %s", status, body)
	}
	tok, _ := os.ReadFile(filepath.Join(dataDir, "token"))
	status, body := d.get(t, "/v1/integrity", strings.TrimSpace(string(tok)))
	var in map[string]any
	json.Unmarshal([]byte(body), &in)
	if status != http.StatusOK || in["log_configured"] != false || in["last_anchor"] != nil {
		t.Errorf("/v1/integrity without a log = %d %s", status, body)
	}
}

// checkReadmeSample checks that the answer the README shows under its
// curl of path is what the process answers now (or, with
// OGMA_UPDATE_GOLDEN set, writes it there).
func checkReadmeSample(t *testing.T, path string, d *devRun, token string) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	status, got := d.get(t, path, token)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, status, got)
	}
	// protojson varies its whitespace on purpose: compare compact forms.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(got)); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, got)
	}
	got = compact.String()
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "curl ") || !strings.Contains(l, path) || i+1 == len(lines) {
			continue
		}
		if lines[i+1] == got {
			return
		}
		if os.Getenv("OGMA_UPDATE_GOLDEN") != "" {
			lines[i+1] = got
			os.WriteFile(readme, []byte(strings.Join(lines, "\n")), 0o644)
			return
		}
		t.Errorf("the README shows for %s\n%s\nbut ogma dev answers\n%s\n(make update-golden rewrites it)", path, lines[i+1], got)
		return
	}
	t.Errorf("the README has no curl of %s followed by its answer", path)
}

// A lost master key is not silently replaced: ogma.control still holds
// admin keys sealed under it, which a new key would never open.
func TestDevRefusesToReplaceALostMasterKey(t *testing.T) {
	dataDir, db := t.TempDir(), chtest.NewDB(t).Database
	d, err := startDev(t, dataDir, db)
	if err != nil {
		t.Fatal(err)
	}
	d.stop(t)
	key := filepath.Join(dataDir, "master.key")
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if _, err := startDev(t, dataDir, db); err == nil || !strings.Contains(err.Error(), "was missing, but ogma.control holds admin keys sealed under master key") {
		t.Fatalf("ogma dev without its master key = %v, want a refusal naming the sealed keys", err)
	}
	if _, err := os.Stat(key); err == nil {
		t.Error("a new master key was left in place of the lost one")
	}
}

// A record of ogma.control that does not parse — anyone who can produce
// there can write one — is logged and skipped by every reader: ogma dev
// keeps serving, later records still apply, and it starts again.
func TestMalformedControlRecordsAreSkipped(t *testing.T) {
	dataDir, db := t.TempDir(), chtest.NewDB(t).Database
	d, err := startDev(t, dataDir, db)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.kafka), topic.ProducerOpt())
	if err != nil {
		t.Fatal(err)
	}
	var bad []*kgo.Record
	for _, kv := range [][2]string{{"tenant/demo", "{"}, {"token/abc", "[]"}, {topic.PartitionsKey, "x"}, {topic.InstallationKey, "7"}} {
		bad = append(bad, &kgo.Record{Topic: topic.Control, Partition: 0, Key: []byte(kv[0]), Value: []byte(kv[1])})
	}
	if err := cl.ProduceSync(t.Context(), bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	// A token made after them works once the API's view has read past them.
	tok, err := ogma(t, nil, "token", "create", "--tenant", "demo", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("token create after malformed control records: %v", err)
	}
	wait.Until(t, "the new token to work", func() bool {
		s, _ := d.get(t, "/me/capabilities", strings.TrimSpace(tok))
		return s == http.StatusOK
	})
	select {
	case err := <-d.done:
		t.Fatalf("ogma dev stopped: %v", err)
	default:
	}
	d.stop(t)
	again, err := startDev(t, dataDir, db)
	if err != nil {
		t.Fatalf("ogma dev does not start again: %v", err)
	}
	again.stop(t)
}

// Whoever can produce to ogma.control but holds no master key (a
// connector's principal, say) grants nothing: a token it writes does not
// authenticate, its delete of a real token and its swap of an integration
// are refused, and ogma dev serves on. A token the CLI signs works.
func TestInjectedAccessRecordsAreRefused(t *testing.T) {
	dataDir, db := t.TempDir(), chtest.NewDB(t).Database
	d, err := startDev(t, dataDir, db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	devTok, err := os.ReadFile(filepath.Join(dataDir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	dial := topic.Seeds([]string{d.kafka})
	l, err := topic.Ensure(t.Context(), dial, 0)
	if err != nil {
		t.Fatal(err)
	}
	minted, hash := control.NewToken()
	injected := []*kgo.Record{
		control.TokenRecord(l, control.Token{Hash: hash, Tenant: "demo", Name: "intruder"}),
		control.Tombstone(control.TokenRecord(l, control.Token{Hash: control.HashToken(strings.TrimSpace(string(devTok))), Tenant: "demo"})),
		control.IntegrationRecord(l, control.Integration{Tenant: "demo", Vendor: control.OpenAI, Generation: 99, Status: control.StatusOK}),
	}
	cl, err := dial(topic.ProducerOpt())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), injected...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	// A token signed after them works once the API has read past them.
	tok, err := ogma(t, nil, "token", "create", "--tenant", "demo", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "the signed token to work", func() bool {
		s, _ := d.get(t, "/me/capabilities", strings.TrimSpace(tok))
		return s == http.StatusOK
	})
	if s, _ := d.get(t, "/me/capabilities", minted); s != http.StatusUnauthorized {
		t.Errorf("the injected token answers %d, want 401", s)
	}
	if s, _ := d.get(t, "/me/capabilities", strings.TrimSpace(string(devTok))); s != http.StatusOK {
		t.Errorf("ogma dev's own token answers %d after an injected delete, want 200", s)
	}
	_, body := d.get(t, "/v1/integrations", strings.TrimSpace(tok))
	if strings.Contains(body, `"generation":99`) {
		t.Errorf("the injected integration replaced the signed one: %s", body)
	}
	if !strings.Contains(d.stderr.String(), "does not parse or authenticate") {
		t.Error("the refused records were not logged")
	}
}

// With --rekor-url, ogma dev anchors: a statement each interval whose
// receipt verifies against the log's key and the anchor key fingerprint
// that `ogma keys anchor` prints, and whose rows reach ClickHouse's
// anchors table, one per tenant leaf.
func TestDevAnchorsInRekor(t *testing.T) {
	url := rekortest.URL(t)
	dataDir, db := t.TempDir(), chtest.NewDB(t).Database
	if _, err := ogma(t, nil, "keys", "anchor", "--data-dir", dataDir); err == nil {
		t.Error("keys anchor without a running installation succeeded")
	}
	d, err := startDev(t, dataDir, db, "--rekor-url", url, "--anchor-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	// The rekor sink makes the anchor key when it starts, which can be
	// after the banner.
	var out string
	wait.Until(t, "keys anchor to print the key", func() bool {
		out, err = ogma(t, nil, "keys", "anchor", "--data-dir", dataDir)
		return err == nil
	})
	fp := regexp.MustCompile(`SHA-256 fingerprint: ([0-9a-f]{64})\n$`).FindStringSubmatch(out)
	if fp == nil || !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----\n") {
		t.Fatalf("keys anchor printed %q, want a PEM public key and its fingerprint", out)
	}

	conn, err := ch.Open(&ch.Options{Addr: []string{chtest.Addr()}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var index, seq uint64
	var statement, path string
	wait.Until(t, "a receipt of the demo tenant in ClickHouse", func() bool {
		err := conn.QueryRow(t.Context(), `SELECT anchor_index, seq, statement, leaf_path FROM anchors FINAL
			WHERE tenant = 'demo' AND seq >= 10 ORDER BY anchor_index DESC LIMIT 1`).Scan(&index, &seq, &statement, &path)
		return err == nil
	})
	st, err := anchor.ParseStatement([]byte(statement))
	if err != nil || st.AnchorKey != fp[1] || st.Index != index {
		t.Errorf("statement %s (%v): want index %d, anchor key %s", statement, err, index, fp[1])
	}
	dial := topic.Seeds([]string{d.kafka})
	var receipts []anchor.Receipt
	topic.ReadToEnd(t.Context(), dial, topic.Anchors, []int32{0}, func(r *kgo.Record) error {
		if dec, err := anchor.Decode(r); err == nil && dec.Receipt != nil {
			receipts = append(receipts, *dec.Receipt)
		}
		return nil
	})
	roots := rekor.TrustRoots{LogKey: rekortest.LogKey(t, url), AnchorKey: fp[1]}
	for i, rc := range receipts {
		if rc.Anchor.Index != uint64(i+1) {
			t.Fatalf("receipt %d holds statement %d", i+1, rc.Anchor.Index)
		}
		if _, err := rekor.VerifyReceipt(t.Context(), rc, roots); err != nil {
			t.Errorf("receipt %d: %v", rc.Anchor.Index, err)
		}
	}
	if status, body := d.get(t, "/healthz", ""); status != http.StatusOK || !strings.Contains(d.stdout.String(), "Healthy") {
		t.Errorf("healthz = %d %s", status, body)
	}

	// The tenant's bundle, exported from ClickHouse, verifies offline
	// against the pinned roots with every network connection refused;
	// tampered, it fails (exit 1); unusable, it is refused (exit 2).
	dir := t.TempDir()
	bundle, logKey := filepath.Join(dir, "demo.bundle"), filepath.Join(dir, "log.pub")
	os.WriteFile(logKey, rekortest.LogKeyPEM(t, url), 0o644)
	if _, err := ogma(t, nil, "export", "--tenant", "demo", "--clickhouse", chtest.Addr(), "--clickhouse-db", db, "--out", bundle); err != nil {
		t.Fatal(err)
	}
	verify := func(path string, extra ...string) (string, int) {
		args := append([]string{"-n", os.Args[0], "verify", path, "--log-key", logKey, "--anchor-key-fingerprint", fp[1]}, extra...)
		cmd := exec.CommandContext(t.Context(), "unshare", args...) // no network at all
		cmd.Env = append(os.Environ(), envAsOgma+"=1")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := verify(bundle, "--anchors")
	if code != 0 || !strings.Contains(out, "proven: tenant demo") || !strings.Contains(out, "anchored through seq") ||
		!regexp.MustCompile(`\nanchor \d+: through seq \d+, stated `).MatchString(out) {
		t.Errorf("ogma verify of the export = %d:\n%s", code, out)
	}
	b, _ := os.ReadFile(bundle)
	tampered := filepath.Join(dir, "tampered.bundle")
	os.WriteFile(tampered, bytes.Replace(b, []byte(`"kind":"identity"`), []byte(`"kind":"fact"`), 1), 0o600)
	if out, code := verify(tampered); code != 1 || !strings.Contains(out, "FAILED: tenant demo, seq ") {
		t.Errorf("ogma verify of a tampered bundle = %d:\n%s", code, out)
	}
	cut := filepath.Join(dir, "cut.bundle")
	os.WriteFile(cut, b[:len(b)/2], 0o600)
	if out, code := verify(cut); code != 2 || !strings.Contains(out, "not a usable bundle") {
		t.Errorf("ogma verify of a cut bundle = %d:\n%s", code, out)
	}
	if out, code := verify(bundle, "--log-key", bundle); code != 2 || !strings.Contains(out, "log key") {
		t.Errorf("ogma verify with a bundle for a key = %d:\n%s", code, out)
	}
}

// /v1/integrity says how far the tenant's chain is anchored, /v1/integrity/keys
// gives what a verifier pins, and /v1/integrity:verify checks the real
// ClickHouse ledger: whole, it verifies; with one event's field changed, one
// event deleted or a projection row changed, it says where.
func TestIntegrityOverREST(t *testing.T) {
	url := rekortest.URL(t)
	dataDir, db := t.TempDir(), chtest.NewDB(t).Database
	d, err := startDev(t, dataDir, db, "--rekor-url", url, "--anchor-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	b, err := os.ReadFile(filepath.Join(dataDir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(b))
	call := func(method, path string) map[string]any {
		t.Helper()
		status, b := d.do(t, method, path, tok, "")
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || status != http.StatusOK {
			var errs []string
			for _, l := range strings.Split(d.stderr.String(), "\n") {
				if strings.Contains(l, "level=ERROR") {
					errs = append(errs, l)
				}
			}
			t.Fatalf("%s %s = %d %s\nerrors logged:\n%s", method, path, status, b, strings.Join(errs, "\n"))
		}
		return m
	}
	wait.Until(t, "the token to work", func() bool { s, _ := d.get(t, "/me/capabilities", tok); return s == http.StatusOK })
	// Until an anchor covers the first events, and manifests of settled
	// buckets are in.
	var in map[string]any
	wait.Until(t, "an anchor of demo's first events, and manifests", func() bool {
		in = call("GET", "/v1/integrity")
		last, _ := in["last_anchor"].(map[string]any)
		seq, _ := strconv.Atoi(fmt.Sprint(last["seq"]))
		cov, _ := in["coverage"].([]any)
		index, _ := strconv.Atoi(fmt.Sprint(last["index"]))
		return seq >= 12 && index >= 3 && len(cov) > 0
	})
	if in["log_configured"] != true || in["log_url"] != url || in["log"] != "rekor-v1" || in["head"].(map[string]any)["seq"] == "0" {
		t.Errorf("integrity = %v", in)
	}
	keys := call("GET", "/v1/integrity/keys")
	if fp, _ := keys["anchor_key_fingerprint"].(string); len(fp) != 64 || keys["log_key"] != string(rekortest.LogKeyPEM(t, url)) {
		t.Errorf("keys = %v", keys)
	}
	v := call("POST", "/v1/integrity:verify")
	if v["verified"] != true || v["events"].(float64) == 0 || v["anchors"].(float64) == 0 || v["first_failure"] != nil {
		t.Fatalf("verify of an untouched ledger = %v", v)
	}

	conn, err := ch.Open(&ch.Options{Addr: []string{chtest.Addr()}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The first three anchors holding demo: an anchor made before its first
	// event has no leaf of it.
	var first, held uint64
	wait.Until(t, "three anchors holding demo", func() bool {
		err := conn.QueryRow(t.Context(), "SELECT min(anchor_index), count() FROM anchors FINAL WHERE tenant = 'demo'").Scan(&first, &held)
		return err == nil && held >= 3
	})
	a1, a2, a3 := anchorRow(t, conn, first), anchorRow(t, conn, first+1), anchorRow(t, conn, first+2)
	n2, n3 := strconv.FormatUint(a2.index, 10), strconv.FormatUint(a3.index, 10)
	// A replaced receipt: the second's row with the first's log entry.
	replaced := a2
	replaced.entry, replaced.uuid, replaced.logIndex, replaced.integrated = a1.entry, a1.uuid, a1.logIndex, a1.integrated
	insertAnchorRow(t, conn, replaced)
	v = call("POST", "/v1/integrity:verify")
	if f, _ := v["first_failure"].(map[string]any); f == nil || f["anchor"] != n2 || f["seq"] != strconv.FormatUint(a2.seq, 10) {
		t.Errorf("verify with anchor %s's receipt replaced = %v", n2, v)
	}
	insertAnchorRow(t, conn, a2)
	// A withheld anchor: the third no longer links.
	mutate(t, conn, "ALTER TABLE anchors DELETE WHERE tenant = 'demo' AND anchor_index = "+n2,
		"SELECT count() FROM anchors WHERE tenant = 'demo' AND anchor_index = "+n2)
	v = call("POST", "/v1/integrity:verify")
	if f, _ := v["first_failure"].(map[string]any); f == nil || f["anchor"] != n3 || f["seq"] != strconv.FormatUint(a3.seq, 10) ||
		!strings.Contains(f["reason"].(string), "anchors "+n2+" to "+n2+" are missing") {
		t.Errorf("verify with anchor %s withheld = %v", n2, v)
	}
	insertAnchorRow(t, conn, a2)
	if v = call("POST", "/v1/integrity:verify"); v["verified"] != true {
		t.Fatalf("verify after the anchors were restored = %v", v)
	}
	// Two swapped events: seq 10 holds 11's event and 11 holds 10's.
	ten, eleven := eventRow(t, conn, 10), eventRow(t, conn, 11)
	mutate(t, conn, "ALTER TABLE events DELETE WHERE tenant = 'demo' AND seq IN (10, 11)",
		"SELECT count() FROM events WHERE tenant = 'demo' AND seq IN (10, 11)")
	ten.seq, eleven.seq = 11, 10
	insertEventRow(t, conn, ten)
	insertEventRow(t, conn, eleven)
	v = call("POST", "/v1/integrity:verify")
	if f, _ := v["first_failure"].(map[string]any); f == nil || f["seq"] != "10" {
		t.Errorf("verify with seq 10 and 11 swapped = %v", v)
	}
	// One data byte of the event at seq 8: a later insert of the same
	// (tenant, seq, hash) is what FINAL reads.
	same := func(s string) string { return s }
	rewrite(t, conn, 8, same, func(data string) string { return strings.Replace(data, `"`, `"x`, 1) })
	v = call("POST", "/v1/integrity:verify")
	if f, _ := v["first_failure"].(map[string]any); v["verified"] != false || f == nil || f["seq"] != "8" ||
		!strings.Contains(f["reason"].(string), "data digest") {
		t.Errorf("verify with a data byte of seq 8 changed = %v", v)
	}
	// One field of the event at seq 5, its hash kept.
	rewrite(t, conn, 5, func(canonical string) string { return strings.Replace(canonical, `"kind":"`, `"kind":"x`, 1) }, same)
	v = call("POST", "/v1/integrity:verify")
	if f, _ := v["first_failure"].(map[string]any); v["verified"] != false || f == nil || f["seq"] != "5" ||
		!strings.Contains(f["reason"].(string), "hash") {
		t.Errorf("verify with seq 5 changed = %v", v)
	}
	// Seq 3 deleted.
	mutate(t, conn, "ALTER TABLE events DELETE WHERE tenant = 'demo' AND seq = 3",
		"SELECT count() FROM events WHERE tenant = 'demo' AND seq = 3")
	v = call("POST", "/v1/integrity:verify")
	if f, _ := v["first_failure"].(map[string]any); f == nil || f["seq"] != "3" || !strings.Contains(f["reason"].(string), "missing") {
		t.Errorf("verify with seq 3 deleted = %v", v)
	}
	// A usage projection row changed.
	if err := conn.Exec(t.Context(), "ALTER TABLE usage UPDATE input_tokens = input_tokens + 1 WHERE tenant = 'demo' AND stream = 'usage.completions'"); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "the projection changed", func() bool {
		v = call("POST", "/v1/integrity:verify")
		m, _ := v["projection_mismatches"].([]any)
		return len(m) > 0 && strings.Contains(fmt.Sprint(m), "usage.completions")
	})
}

// mutate runs a ClickHouse DELETE mutation and waits until count, the
// rows it deletes, is 0: 18.16 applies mutations in the background.
func mutate(t *testing.T, conn ch.Conn, mutation, count string) {
	t.Helper()
	if err := conn.Exec(t.Context(), mutation); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, mutation, func() bool {
		var n uint64
		conn.QueryRow(t.Context(), count).Scan(&n)
		return n == 0
	})
}

// ledgerEvent is a row of the events table.
type ledgerEvent struct {
	seq                                                              uint64
	prev, hash, kind, vendor, stream, key, dd, canonical, data, salt string
	rev                                                              uint32
	observed                                                         time.Time
	part                                                             int32
	off                                                              int64
}

func eventRow(t *testing.T, conn ch.Conn, seq uint64) ledgerEvent {
	t.Helper()
	e := ledgerEvent{seq: seq}
	err := conn.QueryRow(t.Context(), `SELECT prev, hash, kind, vendor, stream, key, rev, observed_at, data_digest, canonical, data, salt,
		source_partition, source_offset FROM events FINAL WHERE tenant = 'demo' AND seq = ?`, seq).
		Scan(&e.prev, &e.hash, &e.kind, &e.vendor, &e.stream, &e.key, &e.rev, &e.observed, &e.dd, &e.canonical, &e.data, &e.salt, &e.part, &e.off)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func insertEventRow(t *testing.T, conn ch.Conn, e ledgerEvent) {
	t.Helper()
	b, err := conn.PrepareBatch(t.Context(), `INSERT INTO events (tenant, seq, prev, hash, kind, vendor, stream, key, rev,
		observed_at, data_digest, canonical, data, salt, source_partition, source_offset)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("demo", e.seq, e.prev, e.hash, e.kind, e.vendor, e.stream, e.key, e.rev, e.observed, e.dd, e.canonical, e.data,
		e.salt, e.part, e.off); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// rewrite inserts again demo's event at seq with its canonical bytes and
// data changed by edit and editData, and everything else, its hash too, as
// it was: a later insert of the same (tenant, seq, hash) is what FINAL reads.
func rewrite(t *testing.T, conn ch.Conn, seq uint64, edit, editData func(string) string) {
	t.Helper()
	e := eventRow(t, conn, seq)
	e.canonical, e.data = edit(e.canonical), editData(e.data)
	insertEventRow(t, conn, e)
}

// ledgerAnchor is a row of the anchors table.
type ledgerAnchor struct {
	index, seq                                                       uint64
	hash, path, root, statement, digest, signature, url, uuid, entry string
	leaf, size                                                       uint32
	logIndex                                                         int64
	integrated                                                       time.Time
}

func anchorRow(t *testing.T, conn ch.Conn, index uint64) ledgerAnchor {
	t.Helper()
	a := ledgerAnchor{index: index}
	err := conn.QueryRow(t.Context(), `SELECT seq, hash, leaf_index, tree_size, leaf_path, root, statement, statement_digest, signature,
		log_url, log_uuid, log_index, integrated_time, entry FROM anchors FINAL WHERE tenant = 'demo' AND anchor_index = ?`, index).
		Scan(&a.seq, &a.hash, &a.leaf, &a.size, &a.path, &a.root, &a.statement, &a.digest, &a.signature, &a.url, &a.uuid, &a.logIndex,
			&a.integrated, &a.entry)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func insertAnchorRow(t *testing.T, conn ch.Conn, a ledgerAnchor) {
	t.Helper()
	b, err := conn.PrepareBatch(t.Context(), `INSERT INTO anchors (tenant, anchor_index, seq, hash, leaf_index, tree_size, leaf_path,
		root, statement, statement_digest, signature, log_url, log_uuid, log_index, integrated_time, entry)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("demo", a.index, a.seq, a.hash, a.leaf, a.size, a.path, a.root, a.statement, a.digest, a.signature,
		a.url, a.uuid, a.logIndex, a.integrated, a.entry); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// checkProjectsAndReconciliation: the projects insight and the
// reconciliation bill exactly what /v1/costs bills, and the reconciliation
// names the causes the simulators produce: OpenAI's bill counts cached
// input at the full rate, and the last days' bills are not final yet.
func checkProjectsAndReconciliation(t *testing.T, d *devRun, tok string, start, end time.Time) {
	t.Helper()
	window := "start=" + start.Format(time.DateOnly) + "&end=" + end.Format(time.DateOnly)
	var costs struct{ Rows []struct{ Amount string } }
	_, body := d.get(t, "/v1/costs?"+window, tok)
	json.Unmarshal([]byte(body), &costs)
	if len(costs.Rows) != 1 {
		t.Fatalf("/v1/costs = %s, want one total", body)
	}
	billed := decimal.RequireFromString(costs.Rows[0].Amount)

	var projects struct {
		Projects []struct {
			BilledUSD string `json:"billed_usd"`
			People    []struct{ Person string }
		}
	}
	_, body = d.get(t, "/v1/insights/projects?"+window, tok)
	json.Unmarshal([]byte(body), &projects)
	sum, people := decimal.Zero, 0
	for _, p := range projects.Projects {
		sum = sum.Add(decimal.RequireFromString(p.BilledUSD))
		people += len(p.People)
	}
	if !sum.Equal(billed) || people == 0 {
		t.Errorf("/v1/insights/projects bills %s with %d people, want %s with people: %.500s", sum, people, billed, body)
	}

	var rec struct {
		Days []struct {
			Day, Vendor, Project string
			BilledUSD            string `json:"billed_usd"`
			Causes               []string
		}
	}
	_, body = d.get(t, "/v1/insights/reconciliation?"+window, tok)
	json.Unmarshal([]byte(body), &rec)
	sum = decimal.Zero
	causes := map[string]bool{}
	for _, r := range rec.Days {
		sum = sum.Add(decimal.RequireFromString(r.BilledUSD))
		for _, c := range r.Causes {
			causes[r.Vendor+" "+c] = true
		}
	}
	if !sum.Equal(billed) {
		t.Errorf("/v1/insights/reconciliation bills %s, want %s", sum, billed)
	}
	for _, c := range []string{"openai cached_input", "openai cost_not_settled", "anthropic cost_not_settled"} {
		if !causes[c] {
			t.Errorf("/v1/insights/reconciliation names no %s: causes %v", c, slices.Sorted(maps.Keys(causes)))
		}
	}
}

// checkUnitsEqualSimulators: usage that is not tokens — images, TTS
// characters, transcribed seconds, stored bytes, sessions, search calls —
// sums by vendor and usage type to the simulators' own numbers over the
// window (issue 13: no all-zero rows).
func checkUnitsEqualSimulators(t *testing.T, d *devRun, tok string, sim *openaisim.Server, an *anthropicsim.Server, start, end time.Time) {
	t.Helper()
	fields := map[string]string{"images": "images", "characters": "characters", "seconds": "seconds", "usage_bytes": "bytes",
		"num_sessions": "sessions", "num_requests": "calls"}
	want := map[string]int64{}
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		for _, spec := range stream.OfKind(stream.OpenAI, stream.UsageReport) {
			for _, r := range sim.Usage(spec.Endpoint, day.Unix(), spec.GroupSet) {
				for field, unit := range fields {
					if n, ok := r[field].(int64); ok && n != 0 {
						want["openai "+spec.Endpoint+" "+unit] += n
					}
				}
			}
		}
		// Each Anthropic message counted once: keyed rows from the report,
		// keyless ones from its breakdown by account.
		for _, r := range an.Usage(day, stream.Must(stream.Anthropic, "usage.messages").GroupSet) {
			if r.APIKeyID != nil && r.ServerToolUse.WebSearchRequests != 0 {
				want["anthropic messages calls"] += r.ServerToolUse.WebSearchRequests
			}
		}
		for _, r := range an.Usage(day, stream.Must(stream.Anthropic, "usage.messages_by_account").GroupSet) {
			if r.APIKeyID == nil && r.ServerToolUse.WebSearchRequests != 0 {
				want["anthropic messages calls"] += r.ServerToolUse.WebSearchRequests
			}
		}
	}
	if len(want) < 7 {
		t.Fatalf("the simulators' units %v: want every kind of unit", want)
	}
	var got map[string]int64
	wait.Until(t, "every unit by vendor and usage type to equal the simulators'", func() bool {
		got = map[string]int64{}
		for _, r := range d.usage(t, tok, start, end, "vendor,usage_type") {
			for unit, n := range r.units {
				if n != 0 {
					got[r.dims["vendor"]+" "+r.dims["usage_type"]+" "+unit] += n
				}
			}
		}
		return maps.Equal(got, want)
	})
}

// simTokens returns the OpenAI simulator's input plus output tokens over
// the days of [start, end), by dim ("model", "user", or "" for one
// total): every usage endpoint counts, those without tokens add zero.
func simTokens(sim *openaisim.Server, start, end time.Time, dim string) map[string]int64 {
	field := map[string]string{"model": "model", "user": "user_id"}[dim]
	want := map[string]int64{}
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		for _, r := range sim.Completions(day, openaisim.CompletionsGroupBy) {
			k := map[string]string{"model": deref(r.Model), "user": deref(r.UserID)}[dim]
			want[k] += r.InputTokens + r.OutputTokens
		}
		for _, spec := range stream.OfKind(stream.OpenAI, stream.UsageReport)[1:] {
			for _, r := range sim.Usage(spec.Endpoint, day.Unix(), spec.GroupSet) {
				k, _ := r[field].(string)
				in, _ := r["input_tokens"].(int64)
				out, _ := r["output_tokens"].(int64)
				if _, has := r[field]; has || in+out > 0 {
					want[k] += in + out
				}
			}
		}
	}
	return want
}
