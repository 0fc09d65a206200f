package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/envelope"
)

// Issue 13: two tenants whose vendor ids overlap — the same user and key
// ids, other people — and every GET of the API, walked from the OpenAPI
// document with acme's token, shows none of globex's rows.
func TestEveryEndpointKeepsTenantsApart(t *testing.T) {
	o := newIdentityOrg(t)
	globex := o.as("globex")
	for _, org := range []struct {
		o      *identityOrg
		domain string
	}{{o, "example.com"}, {globex, "globex.example"}} {
		org.o.usage(t, day1, [2]string{"u_ann", "key_ann"}, [2]string{"", "key_bob"})
		org.o.walk(t, day1.Add(96*time.Hour), "users", "/v1/organization/users", user("u_ann", "ann@"+org.domain), user("u_bob", "bob@"+org.domain))
		org.o.walk(t, day1.Add(96*time.Hour), "project_api_keys", "/v1/organization/projects/proj_1/api_keys",
			key("key_ann", "user", "u_ann", "ann@"+org.domain), key("key_bob", "user", "u_bob", "bob@"+org.domain))
		org.o.publish(t, day1.Add(96*time.Hour), &envelope.Raw{Stream: "audit_logs", Request: envelope.Request{Path: "/v1/organization/audit_logs"},
			Data: json.RawMessage(fmt.Sprintf(`{"id":"audit_log-1","type":"login.succeeded","effective_at":%d,`+
				`"actor":{"type":"session","session":{"user":{"id":"u_ann","email":"ann@%s"}}},"login.succeeded":{}}`, day1.Unix(), org.domain))})
	}
	for _, tenant := range []string{"acme", "globex"} {
		bob := api.PersonID(tenant, "bob@"+map[string]string{"acme": "example.com", "globex": "globex.example"}[tenant])
		wait.Until(t, tenant+"'s data in place", func() bool {
			_, body := o.get(t, "/v1/people/"+bob+"?start=2026-11-20&end=2026-11-21", o.tokens[tenant])
			_, audit := o.get(t, "/v1/audit-logs?start=2026-11-20&end=2026-11-21", o.tokens[tenant])
			events, _ := audit["events"].([]any)
			return fmt.Sprint(body["input_total"]) == "200" && len(events) == 1
		})
	}

	doc, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage
	}
	json.Unmarshal(doc, &spec)
	params := strings.NewReplacer("{id}", api.PersonID("acme", "ann@example.com"), "{vendor}", "openai")
	window := "start=2026-11-20&end=2026-11-21&month=2026-11"
	walked := 0
	for path, ops := range spec.Paths {
		if _, ok := ops["get"]; !ok {
			continue
		}
		walked++
		status, body := o.send(t, http.MethodGet, params.Replace(path)+"?"+window, o.tokens["acme"], "")
		if status >= 500 || strings.Contains(strings.ToLower(string(body)), "globex") {
			t.Errorf("GET %s with acme's token: %d %.400s", path, status, body)
		}
	}
	if walked < 15 {
		t.Errorf("walked %d GET paths, want every one of the document's", walked)
	}
	// Another tenant's person is not found, and acme's sums are its own.
	if status, _ := o.send(t, http.MethodGet, "/v1/people/"+api.PersonID("globex", "ann@globex.example"), o.tokens["acme"], ""); status != http.StatusNotFound {
		t.Errorf("globex's person with acme's token: %d, want 404", status)
	}
	if _, body := o.get(t, "/v1/usage?start=2026-11-20&end=2026-11-21", o.tokens["acme"]); fmt.Sprint(body["rows"]) == "" ||
		!strings.Contains(fmt.Sprint(body["rows"]), "input_total:300") {
		t.Errorf("acme's total = %v, want its own 300 input tokens", body["rows"])
	}
}
