package openaisim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newSim(t *testing.T) (*openaisim.Server, *httptest.Server) {
	t.Helper()
	sim := openaisim.New(openaisim.Config{Seed: 7, Now: func() time.Time { return now }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func get(t *testing.T, srv *httptest.Server, key, path string, q url.Values) (int, map[string]any) {
	t.Helper()
	return do(t, srv, http.MethodGet, key, path, q)
}

func do(t *testing.T, srv *httptest.Server, method, key, path string, q url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path+"?"+q.Encode(), nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %s", method, path, b)
	}
	return resp.StatusCode, v
}

func TestResponsesFollowVendorSchemas(t *testing.T) {
	sim := openaisim.New(openaisim.Config{Seed: 7, Now: func() time.Time { return now }, Tier: openaisim.TierEnterprise})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	s := loadSpec(t)
	key := sim.Key(openaisim.KeyFull)
	start := now.AddDate(0, 0, -40).Unix()
	cases := []struct {
		path, specPath string
		q              url.Values
	}{
		{"/v1/organization/usage/completions", "/organization/usage/completions",
			url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by[]": openaisim.CompletionsGroupBy}},
		{"/v1/organization/usage/completions", "/organization/usage/completions",
			url.Values{"start_time": {itoa(start)}}},
		{"/v1/organization/usage/embeddings", "/organization/usage/embeddings", url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by": {"api_key_id,model,project_id,user_id"}}},
		{"/v1/organization/usage/moderations", "/organization/usage/moderations", url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by[]": {"model"}}},
		{"/v1/organization/usage/images", "/organization/usage/images", url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by[]": {"size", "source"}}},
		{"/v1/organization/usage/audio_speeches", "/organization/usage/audio_speeches", url.Values{"start_time": {itoa(start)}, "limit": {"31"}}},
		{"/v1/organization/usage/audio_transcriptions", "/organization/usage/audio_transcriptions", url.Values{"start_time": {itoa(start)}, "limit": {"31"}}},
		{"/v1/organization/usage/vector_stores", "/organization/usage/vector_stores", url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by[]": {"project_id"}}},
		{"/v1/organization/usage/code_interpreter_sessions", "/organization/usage/code_interpreter_sessions", url.Values{"start_time": {itoa(start)}, "limit": {"31"}}},
		{"/v1/organization/usage/file_search_calls", "/organization/usage/file_search_calls", url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by[]": {"vector_store_id"}}},
		{"/v1/organization/usage/web_search_calls", "/organization/usage/web_search_calls", url.Values{"start_time": {itoa(start)}, "limit": {"31"}, "group_by[]": {"context_level", "model"}}},
		{"/v1/organization/users", "/organization/users", url.Values{"limit": {"100"}}},
		{"/v1/organization/costs", "/organization/costs",
			url.Values{"start_time": {itoa(start)}, "limit": {"30"}, "group_by[]": openaisim.CostsGroupBy}},
		{"/v1/organization/audit_logs", "/organization/audit_logs", url.Values{"limit": {"50"}}},
		{"/v1/organization/projects/" + sim.Projects()[0].ID + "/users", "/organization/projects/{project_id}/users", nil},
		{"/v1/organization/projects/" + sim.Projects()[0].ID + "/service_accounts", "/organization/projects/{project_id}/service_accounts", nil},
		{"/v1/organization/admin_api_keys", "/organization/admin_api_keys", nil},
		{"/v1/organization/projects", "/organization/projects", nil},
		{"/v1/organization/projects/" + sim.Projects()[0].ID + "/api_keys", "/organization/projects/{project_id}/api_keys",
			url.Values{"owner_project_access": {"any"}, "limit": {"100"}}},
	}
	for _, tc := range cases {
		t.Run(tc.path+"?"+tc.q.Encode(), func(t *testing.T) {
			status, body := get(t, srv, key, tc.path, tc.q)
			if status != http.StatusOK {
				t.Fatalf("status = %d, want 200: %v", status, body)
			}
			if data, _ := body["data"].([]any); len(data) == 0 {
				t.Fatalf("no data: %v", body)
			}
			for _, e := range s.check(tc.specPath, body) {
				t.Error(e)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Paging a usage query returns every daily bucket exactly once, in order,
// empty days included, and each bucket equals the simulator's own data.
func TestUsagePagingCoversWindow(t *testing.T) {
	sim, srv := newSim(t)
	start := time.Date(2026, 8, 29, 0, 0, 0, 0, time.UTC)
	q := url.Values{"start_time": {itoa(start.Unix())}, "end_time": {itoa(now.Add(24 * time.Hour).Truncate(24 * time.Hour).Unix())},
		"limit": {"31"}, "group_by[]": openaisim.CompletionsGroupBy, "bucket_width": {"1d"}}
	var days []int64
	pages := 0
	for {
		status, body := get(t, srv, sim.Key(openaisim.KeyFull), "/v1/organization/usage/completions", q)
		if status != http.StatusOK {
			t.Fatalf("page %d: status %d: %v", pages, status, body)
		}
		pages++
		for _, b := range body["data"].([]any) {
			b := b.(map[string]any)
			day := int64(b["start_time"].(float64))
			days = append(days, day)
			var got []openaisim.CompletionsResult
			remarshal(t, b["results"], &got)
			want := sim.Completions(time.Unix(day, 0).UTC(), openaisim.CompletionsGroupBy)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("bucket %d differs from the simulator's data (-want +got):\n%s", day, diff)
			}
		}
		if body["has_more"] != true {
			break
		}
		q.Set("page", body["next_page"].(string))
	}
	if want := 91; len(days) != want {
		t.Errorf("buckets = %d, want %d (2026-08-29 through today)", len(days), want)
	}
	for i := 1; i < len(days); i++ {
		if days[i] != days[i-1]+86400 {
			t.Fatalf("bucket %d starts %d, want %d", i, days[i], days[i-1]+86400)
		}
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func TestArrayEncodingsAreEquivalent(t *testing.T) {
	sim, srv := newSim(t)
	start := itoa(now.AddDate(0, 0, -3).Unix())
	var bodies []map[string]any
	for _, raw := range []string{
		"group_by[]=model&group_by[]=user_id",
		"group_by=model&group_by=user_id",
		"group_by=model,user_id",
	} {
		q, _ := url.ParseQuery(raw + "&start_time=" + start)
		status, body := get(t, srv, sim.Key(openaisim.KeyFull), "/v1/organization/usage/completions", q)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %v", raw, status, body)
		}
		bodies = append(bodies, body)
	}
	for i := 1; i < len(bodies); i++ {
		if diff := cmp.Diff(bodies[0], bodies[i]); diff != "" {
			t.Errorf("encoding %d differs from the bracket form:\n%s", i, diff)
		}
	}
}

func TestRejects(t *testing.T) {
	sim, srv := newSim(t)
	full := sim.Key(openaisim.KeyFull)
	start := itoa(now.AddDate(0, 0, -3).Unix())
	_, page1 := get(t, srv, full, "/v1/organization/usage/completions", url.Values{"start_time": {start}, "limit": {"1"}})
	token := page1["next_page"].(string)
	cases := []struct {
		name       string
		method     string
		key        string
		path       string
		q          url.Values
		wantStatus int
		wantCode   any
		wantInMsg  string
	}{
		{"usage limit over 31", "GET", full, "/v1/organization/usage/completions",
			url.Values{"start_time": {start}, "limit": {"32"}}, 400, "invalid_request_error", "Invalid limit provided: 32"},
		{"missing start_time", "GET", full, "/v1/organization/usage/completions",
			nil, 400, "missing_required_parameter", "start_time"},
		{"unknown group_by", "GET", full, "/v1/organization/usage/completions",
			url.Values{"start_time": {start}, "group_by": {"color"}}, 400, "invalid_request_error", "group_by"},
		{"api_key_id before the floor", "GET", full, "/v1/organization/usage/completions",
			url.Values{"start_time": {"1764000000"}, "group_by[]": {"api_key_id"}}, 400, "invalid_request_error", "1764979200"},
		{"page token with another query", "GET", full, "/v1/organization/usage/completions",
			url.Values{"start_time": {start}, "limit": {"2"}, "page": {token}}, 400, "invalid_request_error", "page token"},
		{"costs limit over 180", "GET", full, "/v1/organization/costs",
			url.Values{"start_time": {start}, "limit": {"366"}}, 400, "invalid_request_error", "Limit must be less than or equal to 180"},
		{"costs bucket_width 1h", "GET", full, "/v1/organization/costs",
			url.Values{"start_time": {start}, "bucket_width": {"1h"}}, 400, "invalid_request_error", "'1d'"},
		{"list limit over 100", "GET", full, "/v1/organization/users",
			url.Values{"limit": {"101"}}, 400, "invalid_request_error", "Invalid limit provided: 101"},
		{"POST", "POST", full, "/v1/organization/users", nil, 405, nil, "only GET"},
		{"DELETE", "DELETE", full, "/v1/organization/projects", nil, 405, nil, "only GET"},
		{"no key", "GET", "", "/v1/organization/users", nil, 401, nil, "provide your API key"},
		{"project key", "GET", sim.Key(openaisim.KeyProject), "/v1/organization/usage/completions",
			url.Values{"start_time": {start}}, 401, nil, "Missing scopes: api.usage.read"},
		{"usage-only key on users", "GET", sim.Key(openaisim.KeyUsageOnly), "/v1/organization/users",
			nil, 401, nil, "Missing scopes: api.management.read"},
		{"revoked key", "GET", sim.Key(openaisim.KeyRevoked), "/v1/organization/users", nil, 401, "invalid_api_key", "Incorrect API key"},
		{"unknown key", "GET", sim.Key(openaisim.KeyUnknown), "/v1/organization/users", nil, 401, "invalid_api_key", "Incorrect API key"},
		{"unknown project", "GET", full, "/v1/organization/projects/proj_nope/api_keys", nil, 404, "not_found", "proj_nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, srv, tc.method, tc.key, tc.path, tc.q)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %v", status, tc.wantStatus, body)
			}
			e := body["error"].(map[string]any)
			if e["code"] != tc.wantCode {
				t.Errorf("code = %v, want %v", e["code"], tc.wantCode)
			}
			if msg := e["message"].(string); !strings.Contains(msg, tc.wantInMsg) {
				t.Errorf("message = %q, want it to contain %q", msg, tc.wantInMsg)
			}
			if strings.Contains(e["message"].(string), tc.key) && tc.key != "" {
				t.Errorf("message repeats the key in clear: %q", e["message"])
			}
		})
	}
	// Every request is recorded, refused ones included, with its method
	// and path: the first page, then each case in order.
	got := sim.Requests()
	if len(got) != 1+len(cases) {
		t.Fatalf("%d requests recorded, want %d", len(got), 1+len(cases))
	}
	for i, tc := range cases {
		if r := got[1+i]; r.Method != tc.method || r.Path != tc.path {
			t.Errorf("request %d recorded as %s %s, want %s %s", 1+i, r.Method, r.Path, tc.method, tc.path)
		}
	}
}

func TestUsersListPages(t *testing.T) {
	sim, srv := newSim(t)
	var ids []string
	q := url.Values{"limit": {"100"}}
	for {
		_, body := get(t, srv, sim.Key(openaisim.KeyFull), "/v1/organization/users", q)
		for _, u := range body["data"].([]any) {
			ids = append(ids, u.(map[string]any)["id"].(string))
		}
		if body["has_more"] != true {
			break
		}
		q.Set("after", body["last_id"].(string))
	}
	var want []string
	for _, u := range sim.Users() {
		want = append(want, u.ID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("paged users differ (-want +got):\n%s", diff)
	}
	if len(ids) < 150 {
		t.Errorf("users = %d, want ≥ 150 by default", len(ids))
	}
}

// The same seed gives the same organization, keys and usage.
func TestDeterministic(t *testing.T) {
	a := openaisim.New(openaisim.Config{Seed: 3, Now: func() time.Time { return now }})
	b := openaisim.New(openaisim.Config{Seed: 3, Now: func() time.Time { return now }})
	day := now.AddDate(0, 0, -5).Truncate(24 * time.Hour)
	if diff := cmp.Diff(a.Completions(day, openaisim.CompletionsGroupBy), b.Completions(day, openaisim.CompletionsGroupBy)); diff != "" {
		t.Error(diff)
	}
	for _, k := range openaisim.KeyKinds {
		if a.Key(k) != b.Key(k) {
			t.Errorf("key %s differs between two sims of one seed", k)
		}
	}
	if a.Users()[5] != b.Users()[5] {
		t.Error("users differ")
	}
}

// Audit logs have events only on Enterprise with audit logging enabled; the
// endpoint answers either way.
func TestAuditLogsByTier(t *testing.T) {
	cases := []struct {
		tier     string
		disabled bool
		want     bool
	}{
		{openaisim.TierPayg, false, false},
		{openaisim.TierEnterprise, true, false},
		{openaisim.TierEnterprise, false, true},
	}
	for _, tc := range cases {
		sim := openaisim.New(openaisim.Config{Seed: 7, Now: func() time.Time { return now }, Tier: tc.tier, AuditDisabled: tc.disabled})
		srv := httptest.NewServer(sim)
		status, body := get(t, srv, sim.Key(openaisim.KeyFull), "/v1/organization/audit_logs", nil)
		srv.Close()
		if status != 200 {
			t.Fatalf("%s disabled=%v: status %d", tc.tier, tc.disabled, status)
		}
		if got := len(body["data"].([]any)) > 0; got != tc.want {
			t.Errorf("%s disabled=%v: events = %v, want %v", tc.tier, tc.disabled, got, tc.want)
		}
	}
}

// A key revoked mid-run is answered as an invalid key from then on.
func TestRevokeMidRun(t *testing.T) {
	sim, srv := newSim(t)
	key := sim.Key(openaisim.KeyFull)
	if status, _ := get(t, srv, key, "/v1/organization/users", nil); status != 200 {
		t.Fatalf("before revoking: %d", status)
	}
	sim.Revoke(openaisim.KeyFull)
	status, body := get(t, srv, key, "/v1/organization/users", nil)
	if status != 401 || body["error"].(map[string]any)["code"] != "invalid_api_key" {
		t.Errorf("after revoking: %d %v, want 401 invalid_api_key", status, body)
	}
}
