package openai_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

func probe(t *testing.T, cfg openaisim.Config, kind string, before func(*openaisim.Server)) (capability.Checklist, error) {
	t.Helper()
	cfg.Seed, cfg.Now = 9, func() time.Time { return simNow }
	sim := openaisim.New(cfg)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	if before != nil {
		before(sim)
	}
	c, _ := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
	cl, err := c.Probe(t.Context(), seal.NewSecret(sim.Key(kind)), simNow)
	for _, r := range sim.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("the probe sent %s %s", r.Method, r.Path)
		}
	}
	return cl, err
}

// Issue 4: one test per checklist flag, true and false, with its reason.
func TestProbeChecklist(t *testing.T) {
	cases := []struct {
		name string
		cfg  openaisim.Config
		kind string
		flag func(capability.Checklist) capability.Flag
		want bool
		why  string
	}{
		{"admin", openaisim.Config{}, openaisim.KeyFull, flagOf(capability.Admin), true, "usage endpoint answered"},
		{"costs", openaisim.Config{}, openaisim.KeyFull, flagOf(capability.Costs), true, "cost endpoint answered"},
		{"project_users", openaisim.Config{}, openaisim.KeyFull, flagOf(capability.ProjectUsers), true, "readable"},
		{"project_users without management scope", openaisim.Config{}, openaisim.KeyUsageOnly,
			flagOf(capability.ProjectUsers), false, "lacks api.management.read"},
		{"per_user_breakdown", openaisim.Config{}, openaisim.KeyFull, flagOf(capability.PerUserBreakdown), true, "with user ids"},
		{"per_user_breakdown without user data", openaisim.Config{NoUserData: true}, openaisim.KeyFull,
			flagOf(capability.PerUserBreakdown), false, "key holder"},
		{"audit_logs on payg", openaisim.Config{}, openaisim.KeyFull, flagOf(capability.AuditLogs), false, "not on Enterprise"},
		{"audit_logs disabled", openaisim.Config{Tier: openaisim.TierEnterprise, AuditDisabled: true}, openaisim.KeyFull,
			flagOf(capability.AuditLogs), false, "not enabled by an Owner"},
		{"audit_logs available, not yet ingested", openaisim.Config{Tier: openaisim.TierEnterprise}, openaisim.KeyFull,
			flagOf(capability.AuditLogs), false, "once the first one is ingested"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := probe(t, tc.cfg, tc.kind, nil)
			if err != nil {
				t.Fatal(err)
			}
			f := tc.flag(cl)
			if f.Value != tc.want || !strings.Contains(f.Reason, tc.why) {
				t.Errorf("flag = %+v, want %v with a reason mentioning %q", f, tc.want, tc.why)
			}
		})
	}
}

// Issue 4: one test per error code the probe can give.
func TestProbeRefusals(t *testing.T) {
	cases := []struct {
		name   string
		kind   string
		before func(*openaisim.Server)
		code   string
		why    string
	}{
		{"project key", openaisim.KeyProject, nil, capability.CodeWrongKeyType, "Admin keys"},
		{"revoked key", openaisim.KeyRevoked, nil, capability.CodeInvalidKey, "invalid_api_key"},
		{"unknown key", openaisim.KeyUnknown, nil, capability.CodeInvalidKey, "invalid_api_key"},
		{"admin key without usage scope", openaisim.KeyNoUsage, nil, capability.CodeInsufficientScope, "api.usage.read"},
		{"vendor 503 three times", openaisim.KeyFull, func(s *openaisim.Server) { s.Fail(503, 503, 503) }, capability.CodeVendorError, "503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probe(t, openaisim.Config{}, tc.kind, tc.before)
			var pe *capability.ProbeError
			if !errors.As(err, &pe) || pe.Code != tc.code || !strings.Contains(pe.Message, tc.why) {
				t.Errorf("Probe = %v, want code %s with a message mentioning %q", err, tc.code, tc.why)
			}
		})
	}
	t.Run("vendor unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, _ := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
		_, err := c.Probe(t.Context(), seal.NewSecret("sk-admin-x"), simNow)
		var pe *capability.ProbeError
		if !errors.As(err, &pe) || pe.Code != capability.CodeVendorUnreachable {
			t.Errorf("Probe = %v, want vendor_unreachable", err)
		}
	})
	t.Run("a 503 once is retried", func(t *testing.T) {
		if _, err := probe(t, openaisim.Config{}, openaisim.KeyFull, func(s *openaisim.Server) { s.Fail(503) }); err != nil {
			t.Errorf("Probe after one 503 = %v, want it retried", err)
		}
	})
}

// flagOf reads one flag of a checklist.
func flagOf(name string) func(capability.Checklist) capability.Flag {
	return func(c capability.Checklist) capability.Flag { f, _ := c.Get(name); return f }
}
