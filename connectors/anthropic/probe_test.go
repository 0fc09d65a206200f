package anthropic_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/anthropic"
	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

func probe(t *testing.T, kind string, before func(*anthropicsim.Server)) (capability.Checklist, error) {
	t.Helper()
	sim := anthropicsim.New(anthropicsim.Config{Seed: 9, Now: func() time.Time { return simNow }})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	if before != nil {
		before(sim)
	}
	c, _ := anthropic.NewClient(anthropic.ClientConfig{BaseURL: srv.URL})
	cl, err := c.Probe(t.Context(), seal.NewSecret(sim.Key(kind)), simNow)
	for _, r := range sim.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("the probe sent %s %s", r.Method, r.Path)
		}
	}
	return cl, err
}

// Issue 12: each flag of the Anthropic checklist, with its reason.
func TestProbeChecklist(t *testing.T) {
	cases := []struct {
		kind, flag string
		want       bool
		reason     string
	}{
		{anthropicsim.KeyAdmin, capability.Admin, true, "the key works"},
		{anthropicsim.KeyAdmin, capability.Costs, true, "cost report answered"},
		{anthropicsim.KeyAdmin, capability.ClaudeCode, true, "Claude Code report answered"},
		{anthropicsim.KeyAdmin, capability.PerUserBreakdown, true, "account ids"},
		{anthropicsim.KeyAdmin, capability.Workspaces, true, "workspace list is readable"},
		{anthropicsim.KeyNoCosts, capability.Costs, false, "403 permission_error"},
		{anthropicsim.KeyNoCosts, capability.ClaudeCode, false, "403 permission_error"},
		{anthropicsim.KeyNoCosts, capability.Admin, true, "the key works"},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.flag, func(t *testing.T) {
			cl, err := probe(t, tc.kind, nil)
			if err != nil {
				t.Fatal(err)
			}
			f, ok := cl.Get(tc.flag)
			if !ok || f.Value != tc.want || !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("%s = %+v (set %v), want %v with a reason saying %q", tc.flag, f, ok, tc.want, tc.reason)
			}
		})
	}
}

// Issue 12: a key that cannot be connected gets a stable code and a
// sentence saying what to do, and nothing else.
func TestProbeRefusals(t *testing.T) {
	cases := []struct {
		name, kind string
		before     func(*anthropicsim.Server)
		code, says string
	}{
		{"inference key", anthropicsim.KeyInference, nil, capability.CodeWrongKeyType, "Admin key (sk-ant-admin01-…)"},
		{"revoked key", anthropicsim.KeyRevoked, nil, capability.CodeInvalidKey, "authentication_error"},
		{"unknown key", anthropicsim.KeyUnknown, nil, capability.CodeInvalidKey, "authentication_error"},
		{"org key without usage permission", anthropicsim.KeyNoUsage, nil, capability.CodeInsufficientScope, "permission_error"},
		{"overloaded three times", anthropicsim.KeyAdmin, func(s *anthropicsim.Server) { s.Fail(529, 529, 529) }, capability.CodeVendorError, "529"},
		{"rate limited", anthropicsim.KeyAdmin, func(s *anthropicsim.Server) { s.Fail(429) }, capability.CodeVendorError, "try again in 1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probe(t, tc.kind, tc.before)
			var pe *capability.ProbeError
			if !errors.As(err, &pe) || pe.Code != tc.code || !strings.Contains(pe.Message, tc.says) {
				t.Errorf("probe = %v, want %s saying %q", err, tc.code, tc.says)
			}
		})
	}
}

// Issue 12: a vendor that cannot be reached is vendor_unreachable, saying
// where it was looked for.
func TestProbeUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c, _ := anthropic.NewClient(anthropic.ClientConfig{BaseURL: url})
	_, err := c.Probe(t.Context(), seal.NewSecret("sk-ant-admin01-x"), simNow)
	var pe *capability.ProbeError
	if !errors.As(err, &pe) || pe.Code != capability.CodeVendorUnreachable || !strings.Contains(pe.Message, url) {
		t.Errorf("probe of a closed port = %v, want vendor_unreachable naming %s", err, url)
	}
}
