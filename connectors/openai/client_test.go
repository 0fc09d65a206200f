package openai

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/vendorhttp"
	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/seal"
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
		// Only a 401 or 403 is a scope refusal: these are errors, not streams to skip.
		{"400 quoting scopes", 400, `{"error":{"message":"Invalid value. Missing scopes: api.usage.read. x","type":"invalid_request_error","param":null,"code":null}}`,
			false, nil, "400", ""},
		{"500 quoting scopes", 500, `{"error":{"message":"Missing scopes: api.management.read.","type":"server_error","param":null,"code":null}}`,
			false, nil, "500", ""},
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

// The vendor client sends a key only where it means to.
func TestClientKeepsTheKeyHome(t *testing.T) {
	ctx := t.Context()
	key := seal.NewSecret("sk-admin-SENTINEL")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

	t.Run("never follows a redirect", func(t *testing.T) {
		var elsewhere, asked atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				elsewhere.Add(1)
			}
		}))
		defer other.Close()
		vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			asked.Add(1)
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}))
		defer vendor.Close()
		c, err := NewClient(ClientConfig{BaseURL: vendor.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Probe(ctx, key, now)
		if !errors.Is(err, ErrRedirect) {
			t.Errorf("probe through a redirect = %v, want ErrRedirect", err)
		}
		if n := elsewhere.Load(); n != 0 {
			t.Errorf("the key went to the redirect's target %d times", n)
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("the vendor was asked %d times, want once: a redirect is not retried", n)
		}
	})

	t.Run("https but on loopback", func(t *testing.T) {
		for base, ok := range map[string]bool{
			"https://api.openai.com": true, "http://127.0.0.1:8787": true, "http://localhost:8787": true, "http://[::1]:8787": true,
			"http://api.openai.com": false, "http://10.0.0.7:8787": false, "ftp://api.openai.com": false,
		} {
			if _, err := NewClient(ClientConfig{BaseURL: base}); (err == nil) != ok {
				t.Errorf("NewClient(%s) = %v, want accepted %v", base, err, ok)
			}
		}
	})

	t.Run("an oversized answer is an error, not a page", func(t *testing.T) {
		vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"object":"page","data":[`))
			w.Write(bytes.Repeat([]byte(" "), vendorhttp.MaxResponse))
			w.Write([]byte(`]}`))
		}))
		defer vendor.Close()
		c, _ := NewClient(ClientConfig{BaseURL: vendor.URL})
		cl, err := c.Probe(ctx, key, now)
		if !errors.Is(err, ErrTooLarge) || admin(cl) || !strings.Contains(err.Error(), "more than any usage page") {
			t.Errorf("probe of an oversized answer = %+v, %v; want an error saying so", cl, err)
		}
	})

	t.Run("an answer that is not a usage page proves nothing", func(t *testing.T) {
		vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hello</html>")) }))
		defer vendor.Close()
		c, _ := NewClient(ClientConfig{BaseURL: vendor.URL})
		cl, err := c.Probe(ctx, key, now)
		var pe *capability.ProbeError
		if !errors.As(err, &pe) || pe.Code != capability.CodeVendorError || admin(cl) {
			t.Errorf("probe of a non-page = %+v, %v; want vendor_error and no admin", cl, err)
		}
	})

	t.Run("probes at once are capped", func(t *testing.T) {
		arrived, release := make(chan struct{}), make(chan struct{})
		vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
			w.Write([]byte(`{"object":"page","data":[]}`))
		}))
		defer vendor.Close()
		c, _ := NewClient(ClientConfig{BaseURL: vendor.URL, MaxProbes: 1})
		first := make(chan error, 1)
		go func() { _, err := c.Probe(ctx, key, now); first <- err }()
		<-arrived // the first probe holds the only slot
		waiting, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.Probe(waiting, key, now); err == nil || !strings.Contains(err.Error(), "Too many keys") {
			t.Errorf("a probe beyond the cap = %v, want it to wait, then give up with its context", err)
		}
		close(release)
		go func() {
			for range arrived { // the first probe's later requests
			}
		}()
		if err := <-first; err != nil {
			t.Errorf("first probe: %v", err)
		}
		close(arrived)
	})
}

func admin(cl capability.Checklist) bool { f, _ := cl.Get(capability.Admin); return f.Value }
