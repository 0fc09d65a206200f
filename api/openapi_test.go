package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/internal/wait"
)

// Issue 13: /openapi.json is served, and true to the wire: real answers of
// every query — rows, people, insights, errors — validate against it, with
// no field the document does not name and every required parameter
// marked.
func TestOpenAPIIsTrueToTheWire(t *testing.T) {
	o := newIdentityOrg(t)
	o.usage(t, day1, [2]string{"u_ann", "key_ann"}, [2]string{"", "key_bob"})
	o.walk(t, day1.Add(96*time.Hour), "users", "/v1/organization/users", user("u_ann", "ann@example.com"), user("u_bob", "bob@example.com"))
	o.walk(t, day1.Add(96*time.Hour), "project_api_keys", "/v1/organization/projects/proj_1/api_keys",
		key("key_ann", "user", "u_ann", "ann@example.com"), key("key_bob", "user", "u_bob", "bob@example.com"))
	wait.Until(t, "usage attributed to bob through his key", func() bool {
		got := o.attribution(t, day1, day1.Add(24*time.Hour), 300)
		return got["key_bob"] == "key_owner "+api.PersonID("acme", "bob@example.com")
	})

	// The document as served.
	resp, err := http.Get("http://" + o.srv.HTTPAddr() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want, _ := os.ReadFile("openapi.json"); resp.StatusCode != http.StatusOK || !bytes.Equal(served, want) {
		t.Fatalf("GET /openapi.json: %d, %d bytes; want the generated document", resp.StatusCode, len(served))
	}
	var v2 openapi2.T
	if err := v2.UnmarshalJSON(served); err != nil {
		t.Fatal(err)
	}
	nullableRefs(&v2)
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: "http://" + o.srv.HTTPAddr()}}
	strict(doc)
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	d1, d2 := day1.Format(time.DateOnly), day1.Add(24*time.Hour).Format(time.DateOnly)
	window := "start=" + d1 + "&end=" + d2
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/usage?" + window + "&group_by=day,model,person,attribution,usage_type,vendor", 200},
		{"GET", "/v1/usage?" + window + "&page_size=1", 200},
		{"GET", "/v1/costs?" + window + "&group_by=day,project", 200},
		{"GET", "/v1/unmapped?" + window, 200},
		{"GET", "/v1/people?" + window, 200},
		{"GET", "/v1/people/" + api.PersonID("acme", "bob@example.com") + "?" + window, 200},
		{"GET", "/v1/links", 200},
		{"GET", "/v1/insights/forecast?month=2026-11", 200},
		{"GET", "/v1/insights/model-mix?" + window, 200},
		{"GET", "/v1/insights/projects?" + window, 200},
		{"GET", "/v1/insights/reconciliation?" + window, 200},
		{"GET", "/v1/audit-logs?start=" + d1, 400},
		{"GET", "/v1/audit-logs", 200},
		{"GET", "/me/capabilities", 200},
		{"GET", "/v1/integrity", 200},
		{"GET", "/v1/integrity/keys", 200},
		{"GET", "/v1/integrations", 200},
		{"GET", "/v1/usage?start=" + d1, 400},
		{"GET", "/v1/people/p_nobody", 404},
		{"DELETE", "/v1/usage?" + window, 405},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, "http://"+o.srv.HTTPAddr()+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+o.tokens["acme"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			continue
		}
		if tc.status == 405 {
			// No operation takes it: the route is the path's other method's.
			req.Method = http.MethodGet
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: no operation in the document: %v", tc.method, tc.path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil }}}
		if tc.status == 200 {
			if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
				t.Errorf("%s %s: the document refuses the request: %v", tc.method, tc.path, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
			t.Errorf("%s %s: the answer is not as documented: %v\n%.600s", tc.method, tc.path, err, body)
		}
	}
}

// nullableRefs reads x-nullable beside a $ref as go-swagger and
// openapi-generator do — the block may be null — which the conversion to
// OpenAPI 3 would drop.
func nullableRefs(doc *openapi2.T) {
	for _, def := range doc.Definitions {
		if def.Value == nil {
			continue
		}
		for name, p := range def.Value.Properties {
			if p.Ref != "" && p.Extensions["x-nullable"] == true {
				def.Value.Properties[name] = &openapi2.SchemaRef{Value: &openapi2.Schema{
					AllOf: openapi2.SchemaRefs{{Ref: p.Ref}}, Extensions: map[string]any{"x-nullable": true}}}
			}
		}
	}
}

// strict makes every object the document describes field by field refuse
// a field it does not name.
func strict(doc *openapi3.T) {
	no := false
	seen := map[*openapi3.Schema]bool{}
	var walk func(s *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Schema == nil && s.AdditionalProperties.Has == nil {
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
}
