package openaisim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// vendorSpec is the vendor's published OpenAPI document of the Admin API
// (testdata/README.md).
const vendorSpec = "testdata/openai-admin-openapi.json"

// spec is the part of an OpenAPI 3.1 document a response check needs.
type spec struct {
	Paths map[string]map[string]struct {
		Responses map[string]struct {
			Content map[string]struct {
				Schema map[string]any `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	b, err := os.ReadFile(vendorSpec)
	if err != nil {
		t.Fatalf("read vendor spec: %v", err)
	}
	var s spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("parse vendor spec: %v", err)
	}
	return &s
}

// check validates a decoded JSON response against the 200 schema of path
// and returns every violation. It implements the JSON Schema keywords the
// vendor's document uses: $ref, type (with null), properties, required,
// items, enum, anyOf, oneOf with a discriminator on "object".
func (s *spec) check(path string, v any) []string {
	op, ok := s.Paths[path]["get"]
	if !ok {
		return []string{"no GET " + path + " in the vendor spec"}
	}
	var errs []string
	s.validate(op.Responses["200"].Content["application/json"].Schema, v, "$", &errs)
	return errs
}

func (s *spec) resolve(sch map[string]any) map[string]any {
	for {
		ref, ok := sch["$ref"].(string)
		if !ok {
			return sch
		}
		sch = s.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
	}
}

func (s *spec) validate(sch map[string]any, v any, at string, errs *[]string) {
	sch = s.resolve(sch)
	fail := func(format string, a ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, a...)) }
	if alts, ok := sch["anyOf"].([]any); ok {
		for _, alt := range alts {
			var sub []string
			s.validate(alt.(map[string]any), v, at, &sub)
			if len(sub) == 0 {
				return
			}
		}
		fail("matches no alternative of anyOf")
		return
	}
	if alts, ok := sch["oneOf"].([]any); ok {
		obj, _ := v.(map[string]any)
		var matched int
		for _, alt := range alts {
			a := s.resolve(alt.(map[string]any))
			// The discriminator is "object": only the alternative whose
			// object enum names v's object applies.
			if enum, ok := a["properties"].(map[string]any)["object"].(map[string]any)["enum"].([]any); ok && obj != nil {
				if !slices.Contains(enum, obj["object"]) {
					continue
				}
			}
			var sub []string
			s.validate(a, v, at, &sub)
			if len(sub) == 0 {
				matched++
			} else {
				*errs = append(*errs, sub...)
			}
		}
		if matched != 1 {
			fail("matches %d alternatives of oneOf, want 1", matched)
		}
		return
	}
	if enum, ok := sch["enum"].([]any); ok && !slices.Contains(enum, v) {
		fail("%v is not one of %v", v, enum)
	}
	switch typ, _ := sch["type"].(string); typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("want an object, got %T", v)
			return
		}
		required, _ := sch["required"].([]any)
		for _, r := range required {
			if _, ok := obj[r.(string)]; !ok {
				fail("required field %q is missing", r)
			}
		}
		props, _ := sch["properties"].(map[string]any)
		for k, pv := range obj {
			if p, ok := props[k]; ok {
				s.validate(p.(map[string]any), pv, at+"."+k, errs)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("want an array, got %T", v)
			return
		}
		items, _ := sch["items"].(map[string]any)
		for i, e := range arr {
			s.validate(items, e, fmt.Sprintf("%s[%d]", at, i), errs)
		}
	case "string":
		if _, ok := v.(string); !ok {
			fail("want a string, got %T", v)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			fail("want an integer, got %v", v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			fail("want a number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want a boolean, got %T", v)
		}
	case "null":
		if v != nil {
			fail("want null, got %v", v)
		}
	}
}

// The check itself can fail: a response missing a required field, or with a
// field of the wrong type, is reported.
func TestSchemaCheckCatchesViolations(t *testing.T) {
	s := loadSpec(t)
	bad := map[string]any{"object": "list", "has_more": false, "data": []any{
		map[string]any{"object": "organization.user", "id": "user-1"},                          // no added_at
		map[string]any{"object": "organization.user", "id": "user-2", "added_at": "yesterday"}, // not an integer
	}}
	if errs := s.check("/organization/users", bad); len(errs) != 2 {
		t.Errorf("check found %d violations, want 2: %v", len(errs), errs)
	}
}
