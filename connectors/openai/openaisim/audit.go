package openaisim

import (
	"cmp"
	"encoding/json"
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

// auditTypes are the event types the simulator emits, each with its
// payload: a property named after the type (vendor-apis.md §1.5).
var auditTypes = []struct {
	name    string
	details func(r *rand.Rand, u User) map[string]any
}{
	{"login.succeeded", func(*rand.Rand, User) map[string]any { return map[string]any{} }},
	{"login.failed", func(*rand.Rand, User) map[string]any {
		return map[string]any{"error_code": "invalid_password", "error_message": "Invalid password."}
	}},
	{"api_key.created", func(r *rand.Rand, _ User) map[string]any {
		return map[string]any{"id": "key_" + randID(r, 16), "data": map[string]any{"scopes": []string{"api.model.request"}}}
	}},
	{"user.updated", func(_ *rand.Rand, u User) map[string]any {
		return map[string]any{"id": u.ID, "changes_requested": map[string]any{"role": "reader"}}
	}},
	{"project.created", func(r *rand.Rand, _ User) map[string]any {
		return map[string]any{"id": "proj_" + randID(r, 24), "data": map[string]any{"name": "New project", "title": "New project"}}
	}},
	{"invite.sent", func(r *rand.Rand, _ User) map[string]any {
		return map[string]any{"id": "invite-" + randID(r, 24), "data": map[string]any{"email": "new@example.com", "role": "reader"}}
	}},
}

// MarshalJSON writes the event with its payload under the event type's
// name, as the vendor does.
func (a AuditLog) MarshalJSON() ([]byte, error) {
	m := map[string]any{"id": a.ID, "object": a.Object, "type": a.Type, "effective_at": a.EffectiveAt, "actor": a.Actor}
	if a.Details != nil {
		m[a.Type] = a.Details
	}
	return json.Marshal(m)
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
			typ := auditTypes[r.IntN(len(auditTypes))]
			out = append(out, AuditLog{ID: fmt.Sprintf("audit_log-%d%02d", day, i), Object: "organization.audit_log",
				Type: typ.name, EffectiveAt: at,
				Actor: map[string]any{"type": "session", "session": map[string]any{
					"user": map[string]any{"id": u.ID, "email": u.Email}, "ip_address": "203.0.113.7",
					"user_agent": "Mozilla/5.0", "ip_address_details": map[string]any{"country": "NL", "city": "Amsterdam"}}},
				Details: typ.details(r, u)})
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
