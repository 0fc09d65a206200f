package anthropicsim_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
)

var simNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func serve(t *testing.T) (*anthropicsim.Server, func(method, path string, q url.Values, key string) (int, map[string]any)) {
	t.Helper()
	sim := anthropicsim.New(anthropicsim.Config{Seed: 3, Now: func() time.Time { return simNow }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, func(method, path string, q url.Values, key string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path+"?"+q.Encode(), nil)
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, b)
		}
		return resp.StatusCode, v
	}
}

// The simulator answers errors the way the vendor does (vendor-apis.md
// §2.1, vendor-api-notes.md C1): the error envelope, the type for each
// status, the five-dimension cap with the vendor's exact message, limits
// that reject rather than clamp, GET only.
func TestErrorsAsTheVendorAnswers(t *testing.T) {
	sim, call := serve(t)
	admin := sim.Key(anthropicsim.KeyAdmin)
	week := url.Values{"starting_at": {"2026-11-20T00:00:00Z"}}
	with := func(extra url.Values) url.Values {
		q := maps.Clone(week)
		maps.Copy(q, extra)
		return q
	}
	cases := []struct {
		name, method, path string
		q                  url.Values
		key                string
		status             int
		typ, message       string
	}{
		{"six dimensions", "GET", "/v1/organizations/usage_report/messages",
			with(url.Values{"group_by[]": {"api_key_id", "workspace_id", "model", "service_tier", "context_window", "account_id"}}), admin,
			400, "invalid_request_error", "Cannot specify more than 5 group_by[] dimensions."},
		{"limit over 31", "GET", "/v1/organizations/usage_report/messages", with(url.Values{"limit": {"32"}}), admin, 400, "invalid_request_error", "limit"},
		{"no starting_at", "GET", "/v1/organizations/cost_report", nil, admin, 400, "invalid_request_error", "starting_at"},
		{"inference key", "GET", "/v1/organizations/usage_report/messages", week, sim.Key(anthropicsim.KeyInference), 403, "permission_error", "permission"},
		{"revoked key", "GET", "/v1/organizations/users", nil, sim.Key(anthropicsim.KeyRevoked), 401, "authentication_error", "invalid x-api-key"},
		{"no key", "GET", "/v1/organizations/users", nil, "", 401, "authentication_error", "x-api-key"},
		{"a write", "POST", "/v1/organizations/invites", nil, admin, 405, "", "read-only"},
		{"unknown path", "GET", "/v1/organizations/compliance", nil, admin, 404, "not_found_error", "Not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(tc.method, tc.path, tc.q, tc.key)
			e, _ := body["error"].(map[string]any)
			if status != tc.status || body["type"] != "error" || tc.typ != "" && e["type"] != tc.typ ||
				!strings.Contains(e["message"].(string), tc.message) || body["request_id"] == nil {
				t.Errorf("%s %s = %d %v, want %d %s saying %q", tc.method, tc.path, status, body, tc.status, tc.typ, tc.message)
			}
		})
	}
}

// keysOf returns an object's field names, sorted.
func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	return slices.Sorted(maps.Keys(m))
}

// Every response has the vendor's published shape (vendor-apis.md §2.3–2.7):
// exactly the documented fields of each object and envelope.
func TestResponsesHaveTheVendorsShapes(t *testing.T) {
	sim, call := serve(t)
	admin := sim.Key(anthropicsim.KeyAdmin)
	list := []string{"data", "first_id", "has_more", "last_id"}
	report := []string{"data", "has_more", "next_page"}
	cases := []struct {
		path     string
		q        url.Values
		envelope []string
		item     []string // of data[0] (reports: of data[0].results[0])
	}{
		{"/v1/organizations/users", nil, list, []string{"added_at", "email", "id", "name", "role", "type"}},
		{"/v1/organizations/workspaces", nil, list, []string{"archived_at", "created_at", "display_color", "id", "name", "type"}},
		{"/v1/organizations/workspaces/" + sim.Workspaces()[0].ID + "/members", nil, list, []string{"type", "user_id", "workspace_id", "workspace_role"}},
		{"/v1/organizations/api_keys", nil, list, []string{"created_at", "created_by", "expires_at", "id", "name", "partial_key_hint", "principal", "scope", "status", "type", "workspace_id"}},
		{"/v1/organizations/invites", nil, list, []string{"email", "expires_at", "id", "invited_at", "role", "status", "type"}},
		{"/v1/organizations/usage_report/messages", url.Values{"starting_at": {"2026-11-20T00:00:00Z"}, "group_by[]": {"model"}}, report,
			[]string{"account_id", "api_key_id", "cache_creation", "cache_read_input_tokens", "context_window", "inference_geo", "model",
				"output_tokens", "server_tool_use", "service_account_id", "service_tier", "uncached_input_tokens", "workspace_id"}},
		{"/v1/organizations/cost_report", url.Values{"starting_at": {"2026-11-20T00:00:00Z"}, "group_by[]": {"description"}}, report,
			[]string{"amount", "context_window", "cost_type", "currency", "description", "inference_geo", "model", "service_tier", "token_type", "workspace_id"}},
		{"/v1/organizations/usage_report/claude_code", url.Values{"starting_at": {"2026-11-25"}}, report,
			[]string{"actor", "core_metrics", "customer_type", "date", "model_breakdown", "organization_id", "subscription_type", "terminal_type", "tool_actions"}},
		{"/v1/organizations/me", nil, []string{"id", "name", "type"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			status, body := call("GET", tc.path, tc.q, admin)
			if status != 200 || !slices.Equal(keysOf(body), tc.envelope) {
				t.Fatalf("GET %s = %d with fields %v, want 200 with %v", tc.path, status, keysOf(body), tc.envelope)
			}
			if tc.item == nil {
				return
			}
			data, _ := body["data"].([]any)
			if len(data) == 0 {
				t.Fatalf("GET %s: no data to check", tc.path)
			}
			item := data[0]
			if b, ok := item.(map[string]any)["results"]; ok {
				if !slices.Equal(keysOf(item), []string{"ending_at", "results", "starting_at"}) {
					t.Errorf("bucket fields %v", keysOf(item))
				}
				for _, bucket := range data {
					if rs := bucket.(map[string]any)["results"].([]any); len(rs) > 0 {
						b = rs
						break
					}
				}
				item = b.([]any)[0]
			}
			if got := keysOf(item); !slices.Equal(got, tc.item) {
				t.Errorf("GET %s item fields %v, want %v", tc.path, got, tc.item)
			}
		})
	}
}

// Report pages chain through next_page tokens of the vendor's form
// (page_ + base64 of the next bucket's start) until has_more is false, and
// lists through after_id.
func TestPaging(t *testing.T) {
	sim, call := serve(t)
	admin := sim.Key(anthropicsim.KeyAdmin)
	q := url.Values{"starting_at": {"2026-10-01T00:00:00Z"}, "limit": {"7"}}
	buckets := 0
	for page := 0; ; page++ {
		status, body := call("GET", "/v1/organizations/usage_report/messages", q, admin)
		if status != 200 {
			t.Fatalf("page %d: %d %v", page, status, body)
		}
		buckets += len(body["data"].([]any))
		if body["has_more"] != true {
			break
		}
		next := body["next_page"].(string)
		if !strings.HasPrefix(next, "page_") {
			t.Fatalf("next_page %q is not of the vendor's form", next)
		}
		q.Set("page", next)
	}
	if want := 58; buckets != want { // 2026-10-01 to 2026-11-27, today included
		t.Errorf("%d buckets over the pages, want %d", buckets, want)
	}
	users := 0
	lq := url.Values{"limit": {"7"}}
	for {
		_, body := call("GET", "/v1/organizations/users", lq, admin)
		users += len(body["data"].([]any))
		if body["has_more"] != true {
			break
		}
		lq.Set("after_id", body["last_id"].(string))
	}
	if users != len(sim.Users()) {
		t.Errorf("%d users over the pages, want %d", users, len(sim.Users()))
	}
}
