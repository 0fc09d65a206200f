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
	users := s.org.users
	if emails := arrayParam(r.URL.Query(), "emails"); len(emails) > 0 {
		users = slices.DeleteFunc(slices.Clone(users), func(u User) bool { return !slices.Contains(emails, u.Email) })
	}
	writeList(w, r, users, func(u User) string { return u.ID })
}

func (s *Server) projects(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.org.projects, func(p Project) string { return p.ID })
}

func (s *Server) projectAPIKeys(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("project_id")
	if !slices.ContainsFunc(s.org.projects, func(p Project) bool { return p.ID == pid }) {
		code := "not_found"
		writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error", Code: &code,
			Message: fmt.Sprintf("No such project: %s.", pid)})
		return
	}
	var keys []APIKey
	for _, k := range s.org.keys {
		if k.projectID == pid {
			keys = append(keys, k)
		}
	}
	writeList(w, r, keys, func(k APIKey) string { return k.ID })
}
