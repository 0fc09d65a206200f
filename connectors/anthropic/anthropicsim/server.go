// Package anthropicsim simulates the read-only Anthropic (Claude) Admin API
// of one organization, for tests and `ogma dev`: a real HTTP server under
// the vendor's own paths (/v1/organizations/…) with its response shapes,
// paging, limits and errors (../shared/vendor-apis.md §2 and the notes),
// over a deterministic organization made from a seed.
//
// It answers GET only and records every request. It serves the messages
// usage report (1d buckets, every group_by[] dimension, the cap of five),
// the cost report (amounts in cents), the Claude Code report, users,
// workspaces, workspace members, API keys and invites, and
// /v1/organizations/me.
package anthropicsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes the simulated organization. Zero fields take the defaults.
type Config struct {
	// Seed makes the organization; the same seed gives the same org. Default 1.
	Seed int64
	// Users is the number of members. Default 60.
	Users int
	// FirstUser is the index of the organization's first person in the
	// simulated world (openaisim.Person): with OpenAI's default 160 users,
	// a FirstUser of 120 puts 40 people in both organizations.
	FirstUser int
	// Workspaces is the number of workspaces. Default 4.
	Workspaces int
	// Days is how many days of usage the org has, up to and including today.
	// Default 120.
	Days int
	// MaxRows caps the result rows of one report response: a denser page is
	// refused with a 400, as the vendor refuses responses too large.
	// Default 2000.
	MaxRows int
	// Now is the simulator's clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Users == 0 {
		c.Users = 60
	}
	if c.Workspaces == 0 {
		c.Workspaces = 4
	}
	if c.Days == 0 {
		c.Days = 120
	}
	if c.MaxRows == 0 {
		c.MaxRows = 2000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Key kinds, as printed by `ogma sim anthropic --print-keys`.
const (
	KeyAdmin     = "admin"     // an Admin API key (sk-ant-admin01-…)
	KeyNoCosts   = "no_costs"  // an org-level key without permission on the cost and Claude Code reports
	KeyInference = "inference" // a workspace (inference) key: the wrong type
	KeyRevoked   = "revoked"   // an Admin key that was revoked
	KeyUnknown   = "unknown"   // a well-formed Admin key the vendor never issued
	KeyNoUsage   = "no_usage"  // an org-level key without permission on the messages usage report
)

// KeyKinds lists the key kinds in print order.
var KeyKinds = []string{KeyAdmin, KeyNoCosts, KeyInference, KeyRevoked, KeyUnknown, KeyNoUsage}

// Request is one request the simulator received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
}

// Server is the simulator. It is an http.Handler, safe for concurrent use.
type Server struct {
	cfg   Config
	org   *Org
	orgID string
	keys  map[string]string // kind → key
	first int64             // first day with usage
	mux   *http.ServeMux

	mu       sync.Mutex
	requests []Request
	revoked  map[string]bool
	failures []int
}

// New returns a simulator of the organization cfg describes.
func New(cfg Config) *Server {
	cfg.defaults()
	today := dayStart(cfg.Now().Unix())
	first := today - int64(cfg.Days-1)*daySeconds
	s := &Server{cfg: cfg, org: newOrg(cfg, first), first: first, keys: map[string]string{}, revoked: map[string]bool{}}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6b657973))
	s.orgID = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff)
	for _, kind := range KeyKinds {
		prefix := "sk-ant-admin01-"
		if kind == KeyInference {
			prefix = "sk-ant-api03-"
		}
		s.keys[kind] = prefix + ulid(r, "")[3:] + ulid(r, "")[3:] + "AA"
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/organizations/me", s.me)
	s.mux.HandleFunc("GET /v1/organizations/usage_report/messages", s.messages)
	s.mux.HandleFunc("GET /v1/organizations/cost_report", s.costReport)
	s.mux.HandleFunc("GET /v1/organizations/usage_report/claude_code", s.claudeCodeReport)
	s.mux.HandleFunc("GET /v1/organizations/users", s.users)
	s.mux.HandleFunc("GET /v1/organizations/workspaces", s.workspaces)
	s.mux.HandleFunc("GET /v1/organizations/workspaces/{workspace_id}/members", s.members)
	s.mux.HandleFunc("GET /v1/organizations/api_keys", s.apiKeys)
	s.mux.HandleFunc("GET /v1/organizations/invites", s.invites)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found_error", "Not found: "+r.URL.Path)
	})
	return s
}

// Key returns the simulator's key of the given kind ([KeyAdmin], …).
func (s *Server) Key(kind string) string { return s.keys[kind] }

// Users returns the organization's members as of its clock.
func (s *Server) Users() []User {
	now := s.cfg.Now().Unix()
	return slices.DeleteFunc(slices.Clone(s.org.users), func(u User) bool { return !s.org.userExists(u, now) })
}

// Workspaces returns the organization's workspaces.
func (s *Server) Workspaces() []Workspace { return slices.Clone(s.org.workspaces) }

// APIKeys returns the API keys that exist as of the clock.
func (s *Server) APIKeys() []APIKey {
	now := s.cfg.Now().Unix()
	return slices.DeleteFunc(slices.Clone(s.org.keys), func(k APIKey) bool { return !s.org.keyExists(k, now) })
}

// Holder returns the user id the usage of a key is attributed to: its
// principal, else its creator; "" for a key with neither.
func (s *Server) Holder(keyID string) string {
	for _, k := range s.org.keys {
		if k.ID == keyID {
			return k.holder
		}
	}
	return ""
}

// Usage returns the simulator's own messages bucket of the day starting at
// day, grouped by groupBy, as of its clock.
func (s *Server) Usage(day time.Time, groupBy []string) []UsageResult {
	if day.Unix() < s.first {
		return nil
	}
	return s.org.usage(day.Unix(), s.cfg.Now().Unix(), groupBy)
}

// Costs returns the simulator's own cost bucket of the day starting at day.
func (s *Server) Costs(day time.Time, groupBy []string) []CostResult {
	if day.Unix() < s.first {
		return nil
	}
	return s.org.costs(day.Unix(), s.cfg.Now().Unix(), groupBy)
}

// ClaudeCode returns the simulator's own Claude Code records of a day.
func (s *Server) ClaudeCode(day time.Time) []ClaudeCodeRecord {
	if day.Unix() < s.first {
		return nil
	}
	return s.org.claudeCode(day.Unix(), s.cfg.Now().Unix(), s.orgID)
}

// Restate changes the usage of a past day: its first row gains extra
// uncached input tokens.
func (s *Server) Restate(day time.Time, extra int64) {
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	s.org.restate[day.Unix()] += extra
}

// Revoke revokes the key of the given kind: from now on it is answered as
// an invalid key.
func (s *Server) Revoke(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[kind] = true
}

// Fail makes the next len(statuses) requests fail with those statuses, in
// order (a 429 comes with retry-after: 1).
func (s *Server) Fail(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, statuses...)
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// errorTypes names the vendor's error type of each status.
var errorTypes = map[int]string{400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
	403: "permission_error", 404: "not_found_error", 409: "conflict_error", 413: "request_too_large",
	429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}

// ServeHTTP records the request, refuses anything but GET, checks the
// version header and the key, and serves the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()})
	fail := 0
	if len(s.failures) > 0 {
		fail, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()
	switch {
	case fail != 0:
		if fail == http.StatusTooManyRequests {
			w.Header().Set("retry-after", "1")
		}
		typ := errorTypes[fail]
		if typ == "" {
			typ = "api_error"
		}
		writeError(w, fail, typ, fmt.Sprintf("The simulator was told to fail this request with %d.", fail))
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", fmt.Sprintf("The simulator is read-only: %s is not allowed, only GET.", r.Method))
	case r.Header.Get("anthropic-version") == "":
		writeError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
	default:
		if status, msg := s.authorize(r); status != 0 {
			writeError(w, status, errorTypes[status], msg)
			return
		}
		s.mux.ServeHTTP(w, r)
	}
}

func (s *Server) authorize(r *http.Request) (int, string) {
	key := r.Header.Get("x-api-key")
	s.mu.Lock()
	revoked := false
	for kind := range s.revoked {
		revoked = revoked || key == s.keys[kind]
	}
	s.mu.Unlock()
	path := r.URL.Path
	switch {
	case key == "":
		return 401, "x-api-key header is required"
	case revoked || key == s.keys[KeyRevoked] || key == s.keys[KeyUnknown] || !slices.Contains(keyValues(s.keys), key):
		return 401, "invalid x-api-key"
	case key == s.keys[KeyInference]:
		return 403, "API key does not have permission to use the specified resource"
	case key == s.keys[KeyNoCosts] && (path == "/v1/organizations/cost_report" || path == "/v1/organizations/usage_report/claude_code"),
		key == s.keys[KeyNoUsage] && path == "/v1/organizations/usage_report/messages":
		return 403, "API key does not have permission to use the specified resource"
	}
	return 0, ""
}

func keyValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	id := fmt.Sprintf("req_sim%016x", rand.Uint64())
	w.Header().Set("request-id", id)
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}, "request_id": id})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // a failed write means the client left
}

func badRequest(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, "invalid_request_error", msg)
}

func dayStart(unix int64) int64 { return unix - ((unix%daySeconds)+daySeconds)%daySeconds }

func (s *Server) me(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]string{"id": s.orgID, "type": "organization", "name": "Simulated Org"})
}

// reportPage is a usage or cost report response.
type reportPage[T any] struct {
	Data     []reportBucket[T] `json:"data"`
	HasMore  bool              `json:"has_more"`
	NextPage *string           `json:"next_page"`
}

type reportBucket[T any] struct {
	StartingAt string `json:"starting_at"`
	EndingAt   string `json:"ending_at"`
	Results    []T    `json:"results"`
}

// reportWindow reads starting_at, ending_at, page and limit of a daily
// report; ok is false after it wrote a 400.
func reportWindow(w http.ResponseWriter, q url.Values, now int64, defLimit, maxLimit int) (from, to int64, limit int, ok bool) {
	start, err := time.Parse(time.RFC3339, q.Get("starting_at"))
	if err != nil {
		badRequest(w, "starting_at: a valid RFC 3339 datetime is required")
		return 0, 0, 0, false
	}
	from, to = dayStart(start.Unix()), dayStart(now)+daySeconds
	if e := q.Get("ending_at"); e != "" {
		end, err := time.Parse(time.RFC3339, e)
		if err != nil {
			badRequest(w, "ending_at: invalid RFC 3339 datetime")
			return 0, 0, 0, false
		}
		to = min(to, dayStart(end.Unix()))
	}
	if bw := q.Get("bucket_width"); bw != "" && bw != "1d" {
		badRequest(w, "bucket_width: the simulator serves 1d buckets only")
		return 0, 0, 0, false
	}
	if p := q.Get("page"); p != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(p, "page_"))
		t, perr := time.Parse(time.RFC3339, string(b))
		if !strings.HasPrefix(p, "page_") || err != nil || perr != nil {
			badRequest(w, "page: invalid page token")
			return 0, 0, 0, false
		}
		from = t.Unix()
	}
	limit = defLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			badRequest(w, fmt.Sprintf("limit: must be between 1 and %d", maxLimit))
			return 0, 0, 0, false
		}
		limit = n
	}
	return from, to, limit, true
}

// groupBy reads group_by[] (or group_by), refusing dimensions the report
// does not know and, where cap > 0, more than cap of them.
func groupBy(w http.ResponseWriter, q url.Values, known []string, cap int) ([]string, bool) {
	dims := append(q["group_by[]"], q["group_by"]...)
	if cap > 0 && len(dims) > cap {
		badRequest(w, fmt.Sprintf("Cannot specify more than %d group_by[] dimensions.", cap))
		return nil, false
	}
	for _, d := range dims {
		if !slices.Contains(known, d) {
			badRequest(w, fmt.Sprintf("group_by[]: invalid value %q", d))
			return nil, false
		}
	}
	return dims, true
}

// page answers days [from, to) of a report, limit buckets a page, each
// bucket's rows from rows.
func page[T any](s *Server, w http.ResponseWriter, from, to int64, limit int, rows func(day int64) []T) {
	out := reportPage[T]{Data: []reportBucket[T]{}}
	n := 0
	day := from
	for ; day < to && len(out.Data) < limit; day += daySeconds {
		res := []T{}
		if day >= s.first {
			res = append(res, rows(day)...)
		}
		n += len(res)
		out.Data = append(out.Data, reportBucket[T]{StartingAt: rfc3339(day), EndingAt: rfc3339(day + daySeconds), Results: res})
	}
	if n > s.cfg.MaxRows {
		badRequest(w, "The response is too large: request fewer buckets (a smaller limit) or fewer group_by[] dimensions.")
		return
	}
	if day < to {
		next := "page_" + base64.StdEncoding.EncodeToString([]byte(rfc3339(day)))
		out.HasMore, out.NextPage = true, &next
	}
	writeJSON(w, 200, out)
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	q, now := r.URL.Query(), s.cfg.Now().Unix()
	from, to, limit, ok := reportWindow(w, q, now, 7, 31)
	if !ok {
		return
	}
	dims, ok := groupBy(w, q, UsageGroupBy, 5)
	if !ok {
		return
	}
	page(s, w, from, to, limit, func(day int64) []UsageResult { return s.org.usage(day, now, dims) })
}

func (s *Server) costReport(w http.ResponseWriter, r *http.Request) {
	q, now := r.URL.Query(), s.cfg.Now().Unix()
	from, to, limit, ok := reportWindow(w, q, now, 7, 31)
	if !ok {
		return
	}
	dims, ok := groupBy(w, q, []string{"workspace_id", "description"}, 0)
	if !ok {
		return
	}
	page(s, w, from, to, limit, func(day int64) []CostResult { return s.org.costs(day, now, dims) })
}

// claudeCodeReport serves one day of Claude Code records, paged by an
// offset token.
func (s *Server) claudeCodeReport(w http.ResponseWriter, r *http.Request) {
	q, now := r.URL.Query(), s.cfg.Now().Unix()
	day, err := time.Parse(time.DateOnly, q.Get("starting_at"))
	if err != nil {
		badRequest(w, "starting_at: a UTC date YYYY-MM-DD is required")
		return
	}
	limit := 20
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			badRequest(w, "limit: must be between 1 and 1000")
			return
		}
	}
	off := 0
	if p := q.Get("page"); p != "" {
		b, derr := base64.StdEncoding.DecodeString(strings.TrimPrefix(p, "page_"))
		if off, err = strconv.Atoi(string(b)); derr != nil || err != nil || off < 0 {
			badRequest(w, "page: invalid page token")
			return
		}
	}
	var recs []ClaudeCodeRecord
	if day.Unix() >= s.first {
		recs = s.org.claudeCode(day.Unix(), now, s.orgID)
	}
	out := struct {
		Data     []ClaudeCodeRecord `json:"data"`
		HasMore  bool               `json:"has_more"`
		NextPage *string            `json:"next_page"`
	}{Data: []ClaudeCodeRecord{}}
	if off < len(recs) {
		out.Data = recs[off:min(len(recs), off+limit)]
	}
	if off+limit < len(recs) {
		next := "page_" + base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(off+limit)))
		out.HasMore, out.NextPage = true, &next
	}
	writeJSON(w, 200, out)
}
