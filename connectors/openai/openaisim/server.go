// Package openaisim simulates the read-only OpenAI Admin API of one
// organization, for tests and `ogma dev`: a real HTTP server under the
// vendor's own base path (/v1/organization/…) with the vendor's response
// shapes, paging, limits and errors (../shared/vendor-apis.md §1), over a
// deterministic organization made from a seed.
//
// It answers GET only and records every request it receives, so tests can
// prove what a client did. It serves usage/completions (1d buckets, every
// group_by dimension), costs, audit logs, users, projects, project users,
// service accounts and API keys, and admin API keys.
package openaisim

import (
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
	// Users is the number of members. Default 160 (more than one page of
	// the users list at the maximum limit of 100).
	Users int
	// Projects is the number of projects. Default 8.
	Projects int
	// Days is how many days of usage the org has, up to and including today.
	// Default 120.
	Days int
	// KeyGroupingFloor is the earliest start_time for which usage may be
	// grouped by api_key_id (Unix seconds). Default 1764979200
	// (2025-12-06T00:00:00Z), as observed on the live API.
	KeyGroupingFloor int64
	// Now is the simulator's clock. Default time.Now.
	Now func() time.Time
	// Tier is the organization's plan: TierPayg (default) or
	// TierEnterprise. Audit logs have events only on Enterprise.
	Tier string
	// AuditDisabled leaves audit logging off, as an Owner must enable it:
	// the endpoint answers, with no events.
	AuditDisabled bool
	// NoUserData makes usage come back with null user ids even when grouped
	// by user, as for an organization that exposes no user-level data.
	NoUserData bool
}

// Tiers of an organization.
const (
	TierPayg       = "payg"
	TierEnterprise = "enterprise"
)

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Users == 0 {
		c.Users = 160
	}
	if c.Projects == 0 {
		c.Projects = 8
	}
	if c.Days == 0 {
		c.Days = 120
	}
	if c.KeyGroupingFloor == 0 {
		c.KeyGroupingFloor = 1764979200
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Tier == "" {
		c.Tier = TierPayg
	}
}

// Key kinds, as printed by `ogma sim openai --print-keys`.
const (
	KeyFull      = "full"       // an unrestricted admin key
	KeyUsageOnly = "usage_only" // an admin key with api.usage.read but not api.management.read
	KeyNoUsage   = "no_usage"   // an admin key with api.management.read but not api.usage.read
	KeyProject   = "project"    // a project (inference) key: the wrong type
	KeyRevoked   = "revoked"    // an admin key that was revoked
	KeyUnknown   = "unknown"    // a well-formed admin key the vendor never issued
)

// KeyKinds lists the key kinds in print order.
var KeyKinds = []string{KeyFull, KeyUsageOnly, KeyNoUsage, KeyProject, KeyRevoked, KeyUnknown}

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
	keys  map[string]string // kind → key
	first int64             // first day with usage
	mux   *http.ServeMux

	mu       sync.Mutex
	requests []Request
	revoked  map[string]bool // key kinds revoked mid-run
	failures []int           // statuses to answer the next requests with
}

// New returns a simulator of the organization cfg describes.
func New(cfg Config) *Server {
	cfg.defaults()
	today := dayStart(cfg.Now().Unix())
	first := today - int64(cfg.Days-1)*daySeconds
	s := &Server{cfg: cfg, org: newOrg(cfg, first), first: first, keys: map[string]string{}, revoked: map[string]bool{}}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6b657973))
	for _, kind := range KeyKinds {
		prefix := "sk-admin-"
		if kind == KeyProject {
			prefix = "sk-proj-"
		}
		s.keys[kind] = prefix + randID(r, 48)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/v1/organization/usage/{endpoint}", s.usageEndpoint)
	s.mux.HandleFunc("/v1/organization/costs", s.costsHandler)
	s.mux.HandleFunc("/v1/organization/audit_logs", s.auditLogsHandler)
	s.mux.HandleFunc("/v1/organization/users", s.users)
	s.mux.HandleFunc("/v1/organization/projects", s.projects)
	s.mux.HandleFunc("/v1/organization/projects/{project_id}/api_keys", s.projectAPIKeys)
	s.mux.HandleFunc("/v1/organization/projects/{project_id}/users", s.projectUsers)
	s.mux.HandleFunc("/v1/organization/projects/{project_id}/service_accounts", s.projectServiceAccounts)
	s.mux.HandleFunc("/v1/organization/admin_api_keys", s.adminAPIKeys)
	return s
}

// Key returns the simulator's key of the given kind ([KeyFull], …).
func (s *Server) Key(kind string) string { return s.keys[kind] }

// Users returns the organization's members as of its clock.
func (s *Server) Users() []User {
	now := s.cfg.Now().Unix()
	return slices.DeleteFunc(slices.Clone(s.org.users), func(u User) bool { return !s.org.userExists(u, now) })
}

// Deleted returns the users who have left the organization by its clock,
// with when they left.
func (s *Server) Deleted() map[string]time.Time {
	now := s.cfg.Now().Unix()
	out := map[string]time.Time{}
	for id, at := range s.org.deleted {
		if at <= now {
			out[id] = time.Unix(at, 0).UTC()
		}
	}
	return out
}

// DeletedUserAfter returns a user who is a member now and leaves later,
// with when they leave; ok is false if there is none.
func (s *Server) DeletedUserAfter() (User, time.Time, bool) {
	now := s.cfg.Now().Unix()
	for _, u := range s.org.users {
		if at, ok := s.org.deleted[u.ID]; ok && at > now && u.AddedAt <= now {
			return u, time.Unix(at, 0).UTC(), true
		}
	}
	return User{}, time.Time{}, false
}

// Projects returns the organization's projects.
func (s *Server) Projects() []Project { return slices.Clone(s.org.projects) }

// APIKeys returns the project API keys that exist as of the clock.
func (s *Server) APIKeys() []APIKey {
	now := s.cfg.Now().Unix()
	return slices.DeleteFunc(slices.Clone(s.org.keys), func(k APIKey) bool { return !s.org.keyExists(k, now) })
}

// Completions returns the simulator's own completions bucket for the day
// starting at day (UTC midnight), grouped by groupBy, as of its clock: what
// GET usage/completions returns for that bucket.
func (s *Server) Completions(day time.Time, groupBy []string) []CompletionsResult {
	return s.org.completions(day.Unix(), s.cfg.Now().Unix(), groupBy, Filter{}, s.first)
}

// Costs returns the simulator's own costs bucket for the day starting at
// day, grouped by groupBy: what GET costs returns for that bucket.
func (s *Server) Costs(day time.Time, groupBy []string) []CostsResult {
	return s.org.costs(day.Unix(), s.cfg.Now().Unix(), groupBy, s.first)
}

// AuditLogs returns the organization's audit events up to its clock,
// newest first: what the audit-log endpoint lists.
func (s *Server) AuditLogs() []AuditLog { return s.auditLogs(s.cfg.Now().Unix()) }

// Restate changes the usage of a past day, as a vendor correcting a bucket
// does: its first row gains extra input tokens. The day must have usage.
func (s *Server) Restate(day time.Time, extra int64) {
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	s.org.restate[day.Unix()] += extra
}

// Usage is usage a test adds to a day (see [Server.AddUsage]).
type Usage struct {
	Project, APIKey, Model       string
	Input, Cached, Output, Calls int64
}

// AddUsage adds a completions row to the day starting at day, billed in
// the day's costs (a model the simulator has no price for at $3/$12 per
// 1M tokens, as a vendor bills every model it serves), so that a test can
// make the organization do something particular: use a model Ogma's price
// table does not know, or read most of a project's input from the cache.
func (s *Server) AddUsage(day time.Time, u Usage) {
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	s.org.added[day.Unix()] = append(s.org.added[day.Unix()], usageRow{project: u.Project, key: u.APIKey, model: u.Model,
		tier: "default", in: u.Input, cached: u.Cached, out: u.Output, requests: max(u.Calls, 1)})
}

// BillLineItem adds usd to a project's line item of the day starting at
// day: a new item is billed with no usage behind it (fine-tuning
// training), an existing one changes (a restatement, once the day was
// read).
func (s *Server) BillLineItem(day time.Time, project, item string, usd float64) {
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	s.org.billed[day.Unix()] = append(s.org.billed[day.Unix()], lineItem{project: project, item: item, usd: usd})
}

// Revoke revokes the key of the given kind: from now on it is answered as
// an invalid key, as after an Owner deletes it.
func (s *Server) Revoke(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[kind] = true
}

// Fail makes the next len(statuses) requests fail with those statuses, in
// order (a 429 comes with Retry-After: 1), as an overloaded vendor does.
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

// ServeHTTP records the request, refuses anything but GET, checks the key,
// and serves the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()})
	fail := 0
	if len(s.failures) > 0 {
		fail, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()
	if fail != 0 {
		if fail == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, fail, apiError{Type: "server_error", Message: fmt.Sprintf("The simulator was told to fail this request with %d.", fail)})
		return
	}

	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("The simulator is read-only: %s is not allowed, only GET.", r.Method)})
		return
	}
	scope := "api.usage.read"
	if !strings.HasPrefix(r.URL.Path, "/v1/organization/usage/") && r.URL.Path != "/v1/organization/costs" {
		scope = "api.management.read"
	}
	if err := s.authorize(r.Header.Get("Authorization"), scope); err != nil {
		writeError(w, http.StatusUnauthorized, *err)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorize(header, scope string) *apiError {
	key, ok := strings.CutPrefix(header, "Bearer ")
	revoked := false
	s.mu.Lock()
	for kind := range s.revoked {
		revoked = revoked || key == s.keys[kind]
	}
	s.mu.Unlock()
	switch {
	case revoked:
		// answered as an unknown key, below
	case !ok || key == "":
		return &apiError{Type: "invalid_request_error", Message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
	case key == s.keys[KeyFull]:
		return nil
	case key == s.keys[KeyUsageOnly] && scope == "api.usage.read", key == s.keys[KeyNoUsage] && scope != "api.usage.read":
		return nil
	case key == s.keys[KeyUsageOnly], key == s.keys[KeyNoUsage], key == s.keys[KeyProject]:
		return &apiError{Type: "invalid_request_error", Message: "You have insufficient permissions for this operation. Missing scopes: " + scope +
			". Check that you have the correct role in your organization (Owner), and if you're using a restricted API key, that it has the necessary scopes."}
	}
	code := "invalid_api_key"
	return &apiError{Type: "invalid_request_error", Code: &code,
		Message: "Incorrect API key provided: " + redact(key) + ". You can find your API key at https://platform.openai.com/account/api-keys."}
}

// redact shows a key the way the vendor's errors do: a prefix and the last
// four characters.
func redact(key string) string {
	if len(key) < 12 {
		return "sk-***"
	}
	return key[:8] + strings.Repeat("*", 8) + key[len(key)-4:]
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, map[string]apiError{"error": e})
}

func badRequest(w http.ResponseWriter, param, code, msg string) {
	e := apiError{Type: "invalid_request_error", Message: msg}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	writeError(w, http.StatusBadRequest, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // a failed write means the client left
}

func dayStart(unix int64) int64 { return unix - ((unix%daySeconds)+daySeconds)%daySeconds }

// intParam parses an optional integer parameter; ok is false after it wrote
// a 400.
func intParam(w http.ResponseWriter, q url.Values, name string, def int64) (int64, bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		badRequest(w, name, "invalid_type", fmt.Sprintf("Invalid type for '%s': expected an integer, but got a string instead.", name))
		return 0, false
	}
	return n, true
}
