package openaisim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
)

// AuditLog is an organization audit event (organization.audit_log).
type AuditLog struct {
	ID          string         `json:"id"`
	Object      string         `json:"object"`
	Type        string         `json:"type"`
	EffectiveAt int64          `json:"effective_at"`
	Actor       map[string]any `json:"actor"`
	Details     map[string]any `json:"-"`
}

// auditLogs returns the org's audit events up to now, newest first: empty
// below Enterprise or with audit logging disabled.
func (s *Server) auditLogs(now int64) []AuditLog {
	if s.cfg.Tier != TierEnterprise || s.cfg.AuditDisabled {
		return nil
	}
	var out []AuditLog
	for day := s.first; day <= now; day += daySeconds {
		r := rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(day)^0x617564))
		for i := range 3 {
			u := s.org.users[r.IntN(len(s.org.users))]
			at := day + int64(r.IntN(daySeconds))
			if at > now {
				continue
			}
			out = append(out, AuditLog{ID: fmt.Sprintf("audit_log-%d%02d", day, i), Object: "organization.audit_log",
				Type: "login.succeeded", EffectiveAt: at,
				Actor: map[string]any{"type": "session", "session": map[string]any{
					"user": map[string]any{"id": u.ID, "email": u.Email}, "ip_address": "203.0.113.7"}}})
		}
	}
	slices.SortFunc(out, func(a, b AuditLog) int {
		return cmp.Or(cmp.Compare(b.EffectiveAt, a.EffectiveAt), cmp.Compare(b.ID, a.ID))
	})
	return out
}

func (s *Server) auditLogsHandler(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now().Unix()
	q := r.URL.Query()
	logs := s.auditLogs(now)
	for _, f := range []struct {
		name string
		keep func(at, v int64) bool
	}{
		{"effective_at[gte]", func(at, v int64) bool { return at >= v }},
		{"effective_at[gt]", func(at, v int64) bool { return at > v }},
		{"effective_at[lte]", func(at, v int64) bool { return at <= v }},
		{"effective_at[lt]", func(at, v int64) bool { return at < v }},
	} {
		if q.Get(f.name) == "" {
			continue
		}
		v, ok := intParam(w, q, f.name, 0)
		if !ok {
			return
		}
		logs = slices.DeleteFunc(slices.Clone(logs), func(l AuditLog) bool { return !f.keep(l.EffectiveAt, v) })
	}
	if logs == nil {
		logs = []AuditLog{}
	}
	writeList(w, r, logs, func(l AuditLog) string { return l.ID })
}
