package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// rest is a REST client that keeps every response body, for the leak check.
type rest struct {
	d      *devRun
	bodies bytes.Buffer
}

func (r *rest) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	status, b := r.d.do(t, method, path, token, body)
	r.bodies.Write(b)
	var v map[string]any
	json.Unmarshal(b, &v)
	return status, v
}

func keyBody(key string) string { return `{"admin_key":"` + key + `"}` }

// Issue 4: validate, connect, replace, list and disconnect over REST; one
// case per error code the API can give from here; a failed probe writes
// nothing and the older key keeps polling; a tenant's token reaches only
// its own integration; and the keys are nowhere in clear.
func TestIntegrationsOverREST(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	dataDir := t.TempDir()
	db := chtest.NewDB(t).Database
	d, err := startDev(t, dataDir, db, "--usage-interval", "1s", "--directory-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	r := &rest{d: d}
	tokb, _ := os.ReadFile(filepath.Join(dataDir, "token"))
	demo := strings.TrimSpace(string(tokb))
	sim := openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers})
	key := sim.Key
	wait.Until(t, "/healthz", func() bool { s, _ := d.get(t, "/healthz", ""); return s == 200 })

	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"project key", keyBody(key(openaisim.KeyProject)), 422, "wrong_key_type"},
		{"revoked key", keyBody(key(openaisim.KeyRevoked)), 422, "invalid_key"},
		{"unknown key", keyBody(key(openaisim.KeyUnknown)), 422, "invalid_key"},
		{"admin key without usage scope", keyBody(key(openaisim.KeyNoUsage)), 422, "insufficient_scope"},
		{"empty key", keyBody(""), 400, "malformed_request"},
		{"not JSON", `{"admin_key": "` + key(openaisim.KeyFull) + `"`, 400, "malformed_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.call(t, "POST", "/v1/integrations/openai:validate", demo, tc.body)
			if status != tc.status || body["code"] != tc.code || body["message"] == "" {
				t.Errorf("validate = %d %v, want %d with code %s and a sentence", status, body, tc.status, tc.code)
			}
		})
	}
	status, body := r.call(t, "POST", "/v1/integrations/openai:validate", demo, keyBody(key(openaisim.KeyFull)))
	if admin, _ := body["admin"].(map[string]any); status != 200 || admin["value"] != true || admin["reason"] == "" {
		t.Fatalf("validate with the full key = %d %v", status, body)
	}

	// A failed probe writes nothing, and the working key keeps polling.
	// (The connector goes on writing stream status and observations of the
	// working key's generation, so what is compared is the integration
	// records, and that no generation newer than theirs is observed.)
	keyRecords := func() (records, integGen, observedGen int) {
		for _, rec := range rawRecords(t, d.kafka, topic.Control) {
			var g struct{ Generation int }
			json.Unmarshal(rec.Value, &g)
			switch {
			case strings.HasPrefix(string(rec.Key), "integration/"):
				records++
				integGen = max(integGen, g.Generation)
			case strings.HasPrefix(string(rec.Key), "observed/"):
				observedGen = max(observedGen, g.Generation)
			}
		}
		return records, integGen, observedGen
	}
	before, gen, _ := keyRecords()
	polls := d.metric(t, "ogma_connector_polls_total", "stream", "usage.completions", "result", "ok")
	if status, body := r.call(t, "PUT", "/v1/integrations/openai", demo, keyBody(key(openaisim.KeyProject))); status != 422 {
		t.Fatalf("PUT with a project key = %d %v", status, body)
	}
	if after, _, observed := keyRecords(); after != before || observed > gen {
		t.Fatalf("a failed PUT wrote to ogma.control: %d integration records before, %d after; generation %d observed, the key's is %d",
			before, after, observed, gen)
	}
	wait.Until(t, "the older key to keep polling", func() bool {
		return d.metric(t, "ogma_connector_polls_total", "stream", "usage.completions", "result", "ok") > polls+1
	})

	// A scope-limited key connects; the directory is skipped with the reason.
	if status, body := r.call(t, "PUT", "/v1/integrations/openai", demo, keyBody(key(openaisim.KeyUsageOnly))); status != 200 {
		t.Fatalf("PUT with the usage-only key = %d %v", status, body)
	}
	wait.Until(t, "the directory skipped", func() bool {
		_, body := r.call(t, "GET", "/v1/integrations", demo, "")
		in := body["integrations"].([]any)[0].(map[string]any)
		return in["generation"] == float64(2) && strings.Contains(in["action"].(string), "api.management.read")
	})
	_, caps := r.call(t, "GET", "/me/capabilities", demo, "")
	if oa := caps["openai"].(map[string]any); oa["admin"] != true || oa["project_users"] != false {
		t.Errorf("capabilities after the usage-only key = %v", oa)
	}
	if status, _ := r.call(t, "PUT", "/v1/integrations/openai", demo, keyBody(key(openaisim.KeyFull))); status != 200 {
		t.Fatalf("PUT with the full key = %d", status)
	}
	_, body = r.call(t, "GET", "/v1/integrations", demo, "")
	in := body["integrations"].([]any)[0].(map[string]any)
	full := key(openaisim.KeyFull)
	if in["generation"] != float64(3) || in["key_hint"] != "sk-admin..."+full[len(full)-4:] || in["region"] != "us" || in["connected"] != true {
		t.Errorf("integration = %v", in)
	}
	if bf := in["backfill"].(map[string]any); bf["total"] != float64(91) {
		t.Errorf("backfill = %v, want 91 buckets in all", bf)
	}

	// An EU tenant is refused; another tenant reaches only its own.
	env := map[string]string{"OGMA_KAFKA_BROKERS": d.kafka, "OGMA_MASTER_KEY_FILE": filepath.Join(dataDir, "master.key")}
	for _, tenant := range []struct{ id, residency string }{{"euco", "eu"}, {"globex", "us"}} {
		if _, err := ogma(t, env, "tenant", "create", "--id", tenant.id, "--name", tenant.id, "--residency", tenant.residency); err != nil {
			t.Fatal(err)
		}
	}
	euTok, _ := ogma(t, env, "token", "create", "--tenant", "euco")
	gTok, _ := ogma(t, env, "token", "create", "--tenant", "globex")
	euTok, gTok = strings.TrimSpace(euTok), strings.TrimSpace(gTok)
	wait.Until(t, "the new tokens", func() bool { s, _ := r.call(t, "GET", "/v1/integrations", gTok, ""); return s == 200 })
	if status, body := r.call(t, "PUT", "/v1/integrations/openai", euTok, keyBody(full)); status != 422 || body["code"] != "region_unsupported" ||
		!strings.Contains(fmt.Sprint(body["message"]), "PUT /v1/integrations/anthropic") {
		t.Errorf("PUT for an EU tenant = %d %v, want region_unsupported, pointing to Claude", status, body)
	}
	// Issue 12: the EU tenant connects Anthropic instead, its region its
	// own; a key of the wrong type, or a vendor Ogma does not read, is
	// refused with its code.
	an := anthropicsim.New(devAnthropicSim(devSeed, testUsers, nil))
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", "/v1/integrations/anthropic", keyBody(an.Key(anthropicsim.KeyInference)), 422, "wrong_key_type"},
		{"PUT", "/v1/integrations/anthropic", keyBody(an.Key(anthropicsim.KeyRevoked)), 422, "invalid_key"},
		{"POST", "/v1/integrations/mistral:validate", keyBody("sk-x"), 404, "unknown_vendor"},
	} {
		if status, body := r.call(t, tc.method, tc.path, euTok, tc.body); status != tc.status || body["code"] != tc.code {
			t.Errorf("%s %s = %d %v, want %d %s", tc.method, tc.path, status, body, tc.status, tc.code)
		}
	}
	status, checklist := r.call(t, "PUT", "/v1/integrations/anthropic", euTok, keyBody(an.Key(anthropicsim.KeyAdmin)))
	if cc, _ := checklist["claude_code"].(map[string]any); status != 200 || cc["value"] != true {
		t.Errorf("PUT /v1/integrations/anthropic for an EU tenant = %d %v, want 200 with the checklist", status, checklist)
	}
	if _, in := r.call(t, "GET", "/v1/integrations/anthropic", euTok, ""); in["region"] != "eu" || in["connected"] != true {
		t.Errorf("the EU tenant's Anthropic integration = %v, want connected in region eu", in)
	}
	_, body = r.call(t, "GET", "/v1/integrations", gTok, "")
	if in := body["integrations"].([]any)[0].(map[string]any); in["connected"] != false {
		t.Errorf("globex sees an integration it never connected: %v", in)
	}
	if status, _ := r.call(t, "PUT", "/v1/integrations/openai", gTok, keyBody(full)); status != 200 {
		t.Fatal("globex could not connect its own key")
	}
	if status, _ := r.call(t, "DELETE", "/v1/integrations/openai", gTok, ""); status != 200 {
		t.Fatal("globex could not disconnect")
	}
	st := controlState(t, d, dataDir)
	if _, ok := st.Integrations[vk("globex")]; ok {
		t.Error("globex's sealed key survived the disconnect")
	}
	if g := st.Integrations[vk("demo")].Generation; g != 3 {
		t.Errorf("another tenant's calls changed demo's integration to generation %d", g)
	}
	if status, _ := r.call(t, "DELETE", "/v1/integrations/openai", gTok, ""); status != 404 {
		t.Errorf("disconnecting twice = %d, want 404", status)
	}

	// The CLI does the same through the API, and shows the backfill.
	root := newRootCmd(envOf(map[string]string{"OGMA_TOKEN": demo}), runners{})
	var out strings.Builder
	root.SetOut(&out)
	root.SetIn(strings.NewReader(full + "\n"))
	root.SetArgs([]string{"integrations", "connect", "openai", "--key-stdin", "--api-url", "http://" + d.http})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("ogma integrations connect openai: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "per_user_breakdown") || !strings.Contains(out.String(), "Backfill done") {
		t.Errorf("the CLI printed:\n%s", out.String())
	}
	r.bodies.WriteString(out.String())

	// The leak check: no key, nor its unredacted tail, anywhere.
	_, metrics := d.get(t, "/metrics", "")
	haystacks := map[string][]byte{"API responses": r.bodies.Bytes(), "/metrics": []byte(metrics),
		"the log": []byte(d.stderr.String() + d.stdout.String())}
	for _, s := range topic.All {
		var b bytes.Buffer
		for _, rec := range rawRecords(t, d.kafka, s.Name) {
			b.Write(rec.Key)
			b.Write(rec.Value)
		}
		haystacks[s.Name] = b.Bytes()
	}
	haystacks["ClickHouse"] = dumpClickHouse(t, db)
	filepath.WalkDir(dataDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(path)
			haystacks[path] = b
		}
		return nil
	})
	for _, kind := range openaisim.KeyKinds {
		k := key(kind)
		for where, hay := range haystacks {
			if bytes.Contains(hay, []byte(k)) || bytes.Contains(hay, []byte(k[len(k)-16:])) {
				t.Errorf("the %s key appears in %s", kind, where)
			}
		}
	}
	d.stop(t)
}

// dumpClickHouse returns every row of every table of db as text.
func dumpClickHouse(t *testing.T, db string) []byte {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{chtest.Addr()}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out bytes.Buffer
	for _, table := range []string{"events", "usage", "usage_provisional", "schema_migrations"} {
		rows, err := conn.Query(t.Context(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		cols := rows.ColumnTypes()
		for rows.Next() {
			vals := make([]any, len(cols))
			for i, c := range cols {
				vals[i] = reflectNew(c.ScanType())
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				out.WriteString(fmtValue(v))
				out.WriteByte('\t')
			}
		}
		rows.Close()
	}
	return out.Bytes()
}

func reflectNew(t reflect.Type) any { return reflect.New(t).Interface() }

func fmtValue(v any) string { return fmt.Sprint(reflect.ValueOf(v).Elem().Interface()) }

func vk(tenant string) control.VendorKey {
	return control.VendorKey{Tenant: tenant, Vendor: control.OpenAI}
}

// controlState is ogma.control as the API of d, on dataDir, reads it:
// what is not signed under its master key does not count.
func controlState(t *testing.T, d *devRun, dataDir string) *control.State {
	t.Helper()
	dial := topic.Seeds([]string{d.kafka})
	l, err := topic.Ensure(t.Context(), dial, 0)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.LoadKeyring(filepath.Join(dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := control.Load(t.Context(), dial, l, kr)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The CLI's API client carries a token and an admin key: it never follows
// a redirect, and speaks plain http to loopback only.
func TestCLIKeepsItsTokenHome(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			elsewhere.Add(1)
		}
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("sk-admin-SENTINEL\n"), 0o600)
	env := map[string]string{"OGMA_TOKEN": "ogma_token"}

	_, err := ogma(t, env, "integrations", "connect", "openai", "--key-file", keyFile, "--api-url", api.URL)
	if err == nil || !strings.Contains(err.Error(), "redirect") || elsewhere.Load() != 0 {
		t.Errorf("connect through a redirect = %v, %d requests with a token elsewhere; want a refusal and none", err, elsewhere.Load())
	}
	_, err = ogma(t, env, "integrations", "connect", "openai", "--key-file", keyFile, "--api-url", "http://10.9.8.7:8080")
	if err == nil || !strings.Contains(err.Error(), "https only") {
		t.Errorf("connect over plain http off loopback = %v, want a refusal", err)
	}
}
