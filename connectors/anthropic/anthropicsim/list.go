package anthropicsim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// listPage is an entity list response: no object field, ids of the page's
// ends.
type listPage[T any] struct {
	Data    []T     `json:"data"`
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
}

// writeList pages items by after_id (or before_id) and limit (1–1000,
// default 20).
func writeList[T any](w http.ResponseWriter, r *http.Request, items []T, id func(T) string) {
	q := r.URL.Query()
	limit := 20
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			badRequest(w, "limit: must be between 1 and 1000")
			return
		}
		limit = n
	}
	lo, hi := 0, len(items)
	if a := q.Get("after_id"); a != "" {
		lo = slices.IndexFunc(items, func(t T) bool { return id(t) == a }) + 1
		if lo == 0 {
			badRequest(w, "after_id: no such object")
			return
		}
	}
	if b := q.Get("before_id"); b != "" {
		hi = slices.IndexFunc(items, func(t T) bool { return id(t) == b })
		if hi < 0 {
			badRequest(w, "before_id: no such object")
			return
		}
		lo = max(lo, hi-limit)
	}
	out := listPage[T]{Data: items[lo:min(hi, lo+limit)]}
	out.HasMore = lo+limit < hi
	if len(out.Data) > 0 {
		f, l := id(out.Data[0]), id(out.Data[len(out.Data)-1])
		out.FirstID, out.LastID = &f, &l
	}
	writeJSON(w, 200, out)
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	users := s.Users()
	if e := r.URL.Query().Get("email"); e != "" {
		users = slices.DeleteFunc(users, func(u User) bool { return !strings.EqualFold(u.Email, e) })
	}
	writeList(w, r, users, func(u User) string { return u.ID })
}

func (s *Server) workspaces(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.Workspaces(), func(ws Workspace) string { return ws.ID })
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace_id")
	if !slices.ContainsFunc(s.org.workspaces, func(x Workspace) bool { return x.ID == ws }) {
		writeError(w, http.StatusNotFound, "not_found_error", "workspace not found")
		return
	}
	now := s.cfg.Now().Unix()
	var out []WorkspaceMember
	for _, m := range s.org.members {
		if u, ok := s.org.userByID(m.UserID); m.WorkspaceID == ws && ok && s.org.userExists(u, now) {
			out = append(out, m)
		}
	}
	writeList(w, r, out, func(m WorkspaceMember) string { return m.UserID })
}

func (s *Server) apiKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	keys := slices.DeleteFunc(s.APIKeys(), func(k APIKey) bool {
		return q.Get("status") != "" && k.Status != q.Get("status") ||
			q.Get("workspace_id") != "" && (k.WorkspaceID == nil || *k.WorkspaceID != q.Get("workspace_id"))
	})
	writeList(w, r, keys, func(k APIKey) string { return k.ID })
}

func (s *Server) invites(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.org.invites, func(i Invite) string { return i.ID })
}
