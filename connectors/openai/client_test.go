package openai

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrorClassifies(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		body        string
		wantInvalid bool
		wantScopes  []string
		wantInError string
		notInError  string
	}{
		{"invalid key", 401, `{"error":{"message":"Incorrect API key provided: sk-admin********wxyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			true, nil, "401 invalid_api_key", "wxyz"},
		{"missing scopes", 401, `{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: api.usage.read, api.management.read. Check that you have the correct role.","type":"invalid_request_error","param":null,"code":null}}`,
			false, []string{"api.usage.read", "api.management.read"}, "missing scopes api.usage.read, api.management.read", ""},
		{"bad request", 400, `{"error":{"message":"Invalid limit provided: 366.","type":"invalid_request_error","param":"limit","code":"invalid_request_error"}}`,
			false, nil, "Invalid limit provided: 366", ""},
		{"not json", 502, `<html>bad gateway</html>`, false, nil, "502", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := parseError("/v1/organization/usage/completions", tc.status, []byte(tc.body))
			if got := errors.Is(e, ErrInvalidKey); got != tc.wantInvalid {
				t.Errorf("errors.Is(ErrInvalidKey) = %v, want %v", got, tc.wantInvalid)
			}
			if strings.Join(e.MissingScopes, ",") != strings.Join(tc.wantScopes, ",") {
				t.Errorf("MissingScopes = %v, want %v", e.MissingScopes, tc.wantScopes)
			}
			if !strings.Contains(e.Error(), tc.wantInError) {
				t.Errorf("Error() = %q, want it to contain %q", e.Error(), tc.wantInError)
			}
			if tc.notInError != "" && strings.Contains(e.Error(), tc.notInError) {
				t.Errorf("Error() = %q repeats the vendor's key hint", e.Error())
			}
		})
	}
}

// Vendor error bodies are outside input: parsing one never panics, and the
// error text never carries the vendor's message for an auth failure.
func FuzzParseError(f *testing.F) {
	f.Add(401, []byte(`{"error":{"message":"Incorrect API key provided: sk-admin-SECRET.","code":"invalid_api_key"}}`))
	f.Add(401, []byte(`{"error":{"message":"Missing scopes: a, b. x","code":null}}`))
	f.Add(400, []byte(`{"error":{"message":"Missing scopes:","param":"limit"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseError("/p", status, body)
		if (status == 401 || status == 403) && e.Message != "" && len(e.Message) > 8 && strings.Contains(e.Error(), e.Message) {
			t.Fatalf("Error() = %q carries the auth failure's message", e.Error())
		}
	})
}
