package openaisim

import (
	"fmt"
	"net/http"
	"slices"
)

type list[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// writeList serves one page of items: limit (1–100, default 20) items after
// the object whose id is the after parameter.
func writeList[T any](w http.ResponseWriter, r *http.Request, items []T, id func(T) string) {
	q := r.URL.Query()
	limit, ok := intParam(w, q, "limit", 20)
	if !ok {
		return
	}
	if limit < 1 || limit > 100 {
		badRequest(w, "limit", "invalid_request_error", fmt.Sprintf("Invalid limit provided: %d. Limit must be between 1 and 100.", limit))
		return
	}
	from := 0
	if after := q.Get("after"); after != "" {
		i := slices.IndexFunc(items, func(t T) bool { return id(t) == after })
		if i < 0 {
			badRequest(w, "after", "invalid_request_error", fmt.Sprintf("No object with id %q to page after.", after))
			return
		}
		from = i + 1
	}
	stop := min(from+int(limit), len(items))
	l := list[T]{Object: "list", Data: items[from:stop], HasMore: stop < len(items)}
	if len(l.Data) > 0 {
		first, last := id(l.Data[0]), id(l.Data[len(l.Data)-1])
		l.FirstID, l.LastID = &first, &last
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	users := s.Users()
	if emails := arrayParam(r.URL.Query(), "emails"); len(emails) > 0 {
		users = slices.DeleteFunc(slices.Clone(users), func(u User) bool { return !slices.Contains(emails, u.Email) })
	}
	writeList(w, r, users, func(u User) string { return u.ID })
}

func (s *Server) projects(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.org.projects, func(p Project) string { return p.ID })
}

func (s *Server) projectAPIKeys(w http.ResponseWriter, r *http.Request) {
	pid, ok := s.project(w, r)
	if !ok {
		return
	}
	var keys []APIKey
	for _, k := range s.APIKeys() {
		if k.projectID == pid {
			keys = append(keys, k)
		}
	}
	writeList(w, r, keys, func(k APIKey) string { return k.ID })
}

// ProjectUser is a member of a project (organization.project.user).
type ProjectUser struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Role    string `json:"role"`
	AddedAt int64  `json:"added_at"`
}

// ServiceAccount is a project service account
// (organization.project.service_account).
type ServiceAccount struct {
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

// AdminAPIKey is an organization admin key (organization.admin_api_key).
type AdminAPIKey struct {
	Object        string         `json:"object"`
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	RedactedValue string         `json:"redacted_value"`
	CreatedAt     int64          `json:"created_at"`
	ExpiresAt     *int64         `json:"expires_at"`
	LastUsedAt    *int64         `json:"last_used_at"`
	Owner         map[string]any `json:"owner"`
}

// ProjectUsers returns the members of a project: the owners of its keys.
func (s *Server) ProjectUsers(projectID string) []ProjectUser {
	var out []ProjectUser
	seen := map[string]bool{}
	for _, k := range s.APIKeys() {
		if k.projectID != projectID || k.Owner.User == nil || seen[k.Owner.User.ID] {
			continue
		}
		u := k.Owner.User
		seen[u.ID] = true
		out = append(out, ProjectUser{Object: "organization.project.user", ID: u.ID, Name: u.Name, Email: u.Email,
			Role: "member", AddedAt: u.CreatedAt})
	}
	return out
}

// ServiceAccounts returns a project's service accounts.
func (s *Server) ServiceAccounts(projectID string) []ServiceAccount {
	var out []ServiceAccount
	for _, k := range s.org.keys {
		if k.projectID == projectID && k.Owner.ServiceAccount != nil {
			sa := k.Owner.ServiceAccount
			out = append(out, ServiceAccount{Object: "organization.project.service_account", ID: sa.ID, Name: sa.Name,
				Role: sa.Role, CreatedAt: sa.CreatedAt})
		}
	}
	return out
}

// AdminAPIKeys returns the organization's admin keys, redacted as the
// vendor shows them.
func (s *Server) AdminAPIKeys() []AdminAPIKey {
	owner := s.org.users[0]
	var out []AdminAPIKey
	for i, kind := range []string{KeyFull, KeyUsageOnly, KeyNoUsage} {
		key := s.keys[kind]
		out = append(out, AdminAPIKey{Object: "organization.admin_api_key", ID: fmt.Sprintf("key_admin%02d", i),
			Name: kind + " admin key", RedactedValue: "sk-admin..." + key[len(key)-4:], CreatedAt: owner.AddedAt,
			Owner: map[string]any{"type": "user", "object": "organization.user", "id": owner.ID, "name": owner.Name,
				"created_at": owner.AddedAt, "role": "owner"}})
	}
	return out
}

func (s *Server) project(w http.ResponseWriter, r *http.Request) (string, bool) {
	pid := r.PathValue("project_id")
	if !slices.ContainsFunc(s.org.projects, func(p Project) bool { return p.ID == pid }) {
		code := "not_found"
		writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error", Code: &code,
			Message: fmt.Sprintf("No such project: %s.", pid)})
		return "", false
	}
	return pid, true
}

func (s *Server) projectUsers(w http.ResponseWriter, r *http.Request) {
	if pid, ok := s.project(w, r); ok {
		writeList(w, r, s.ProjectUsers(pid), func(u ProjectUser) string { return u.ID })
	}
}

func (s *Server) projectServiceAccounts(w http.ResponseWriter, r *http.Request) {
	if pid, ok := s.project(w, r); ok {
		writeList(w, r, s.ServiceAccounts(pid), func(a ServiceAccount) string { return a.ID })
	}
}

func (s *Server) adminAPIKeys(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.AdminAPIKeys(), func(k AdminAPIKey) string { return k.ID })
}
