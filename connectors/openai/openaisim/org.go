package openaisim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

const daySeconds = 24 * 60 * 60

// User is an organization member (organization.user).
type User struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Role    string `json:"role"`
	AddedAt int64  `json:"added_at"`
}

// Project is an organization project (organization.project).
type Project struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	ArchivedAt *int64 `json:"archived_at"`
	Status     string `json:"status"`
}

// KeyOwnerUser is a project API key's owning user.
type KeyOwnerUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	Role      string `json:"role"`
}

// KeyOwnerServiceAccount is a project API key's owning service account.
type KeyOwnerServiceAccount struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	Role      string `json:"role"`
}

// KeyOwner is the owner block of a project API key.
type KeyOwner struct {
	Type           string                  `json:"type"`
	User           *KeyOwnerUser           `json:"user,omitempty"`
	ServiceAccount *KeyOwnerServiceAccount `json:"service_account,omitempty"`
}

// APIKey is a project API key (organization.project.api_key).
type APIKey struct {
	Object             string   `json:"object"`
	RedactedValue      string   `json:"redacted_value"`
	Name               string   `json:"name"`
	CreatedAt          int64    `json:"created_at"`
	LastUsedAt         *int64   `json:"last_used_at"`
	ID                 string   `json:"id"`
	OwnerProjectAccess string   `json:"owner_project_access"`
	Owner              KeyOwner `json:"owner"`
	projectID          string
}

// CompletionsResult is one row of a completions usage bucket
// (organization.usage.completions.result). Grouping fields are nil unless
// the request grouped by them.
type CompletionsResult struct {
	Object                string  `json:"object"`
	InputTokens           int64   `json:"input_tokens"`
	InputCachedTokens     int64   `json:"input_cached_tokens"`
	InputCacheWriteTokens int64   `json:"input_cache_write_tokens"`
	InputUncachedTokens   int64   `json:"input_uncached_tokens"`
	OutputTokens          int64   `json:"output_tokens"`
	InputAudioTokens      int64   `json:"input_audio_tokens"`
	OutputAudioTokens     int64   `json:"output_audio_tokens"`
	NumModelRequests      int64   `json:"num_model_requests"`
	ProjectID             *string `json:"project_id"`
	UserID                *string `json:"user_id"`
	APIKeyID              *string `json:"api_key_id"`
	Model                 *string `json:"model"`
	Batch                 *bool   `json:"batch"`
	ServiceTier           *string `json:"service_tier"`
}

// CompletionsGroupBy lists the group_by dimensions of usage/completions.
var CompletionsGroupBy = []string{"api_key_id", "batch", "model", "project_id", "service_tier", "user_id"}

// usageRow is usage at the finest grain: one key, model, batch flag and tier
// on one day.
type usageRow struct {
	project, user, key, model, tier string // user "" = a service account's key
	batch                           bool
	in, cached, cacheWrite, out     int64
	audioIn, audioOut, requests     int64
}

// Org is a deterministic simulated OpenAI organization: its members,
// projects, keys and usage follow from the seed alone.
type Org struct {
	seed     uint64
	days     int
	noUsers  bool
	users    []User
	projects []Project
	keys     []APIKey

	// deleted maps a user id to when the user left the organization; their
	// keys go with them. Users join and leave over simulated time.
	deleted map[string]int64

	mu      sync.Mutex
	byDay   map[int64][]usageRow // full-day usage, generated on first use
	restate map[int64]int64      // day → extra input tokens
	added   map[int64][]usageRow // day → usage a test added (AddUsage)
	billed  map[int64][]lineItem // day → line items a test billed (BillLineItem)
}

// lineItem is a cost line item of a project with no usage behind it.
type lineItem struct {
	project, item string
	usd           float64
}

var (
	firstNames = []string{"ada", "alan", "barbara", "claude", "dennis", "edsger", "frances", "grace", "hedy", "ivan",
		"jean", "ken", "leslie", "margaret", "niklaus", "radia", "rob", "shafi", "tim", "yukihiro"}
	lastNames = []string{"allen", "backus", "cerf", "dijkstra", "engelbart", "floyd", "goldwasser", "hopper", "iverson",
		"kahn", "lamport", "liskov", "mccarthy", "naur", "perlman", "ritchie", "thompson", "turing", "wirth", "yao"}
	models = []string{"gpt-6-sol", "gpt-6-luna", "gpt-5.6-terra", "gpt-5.4-mini", "gpt-4.1-mini", "o4-mini"}
)

// Person returns the name and email of the i-th person of the simulated
// world, the same for every vendor's simulator: a person in two vendors'
// organizations has one email (vendors may spell it in other letter case).
func Person(i int) (name, email string) {
	first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
	email = fmt.Sprintf("%s.%s@example.com", first, last)
	if n := i / (len(firstNames) * len(lastNames)); n > 0 {
		email = fmt.Sprintf("%s.%s%d@example.com", first, last, n)
	}
	return strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:], email
}

const idChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randID(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idChars[r.IntN(len(idChars))]
	}
	return string(b)
}

// newOrg builds the organization of cfg as it stands at epoch, the start of
// its first day of usage.
func newOrg(cfg Config, epoch int64) *Org {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6f7267))
	o := &Org{seed: uint64(cfg.Seed), days: cfg.Days, noUsers: cfg.NoUserData, byDay: map[int64][]usageRow{},
		restate: map[int64]int64{}, deleted: map[string]int64{},
		added: map[int64][]usageRow{}, billed: map[int64][]lineItem{}}
	founded := epoch - 30*daySeconds
	for i := range cfg.Projects {
		o.projects = append(o.projects, Project{
			ID: "proj_" + randID(r, 24), Object: "organization.project",
			Name: fmt.Sprintf("Project %02d", i+1), CreatedAt: founded + int64(i)*3600, Status: "active",
		})
	}
	for i := range cfg.Users {
		name, email := Person(i)
		role := "reader"
		if i == 0 {
			role = "owner"
		}
		u := User{
			Object: "organization.user", ID: "user-" + randID(r, 24),
			Name:  name,
			Email: email, Role: role, AddedAt: founded + int64(i)*60,
		}
		switch {
		case i%25 == 13 && cfg.Days > 40: // leaves: some in the past, some days after the start
			o.deleted[u.ID] = epoch + int64(30+(i*7)%(cfg.Days-20))*daySeconds + 3600
		case i%30 == 17: // joins late
			u.AddedAt = epoch + int64(60+i%20)*daySeconds + 7200
		}
		o.users = append(o.users, u)
	}
	// Every user has a key in one project, a quarter a second key in another;
	// every project has two service accounts with a key each.
	for i, u := range o.users {
		n := 1
		if i%4 == 0 {
			n = 2
		}
		for j := range n {
			p := o.projects[(i+j*3)%len(o.projects)]
			k := o.newKey(r, p, fmt.Sprintf("%s's key %d", u.Name, j+1), KeyOwner{Type: "user",
				User: &KeyOwnerUser{ID: u.ID, Email: u.Email, Name: u.Name, CreatedAt: u.AddedAt, Role: "member"}})
			k.CreatedAt = max(k.CreatedAt, u.AddedAt)
			o.keys = append(o.keys, k)
		}
	}
	for _, p := range o.projects {
		for _, role := range []string{"pipeline", "reporting"} {
			sa := &KeyOwnerServiceAccount{ID: "svc_acct_" + randID(r, 24), Name: p.Name + " " + role, CreatedAt: p.CreatedAt, Role: "member"}
			o.keys = append(o.keys, o.newKey(r, p, sa.Name, KeyOwner{Type: "service_account", ServiceAccount: sa}))
		}
	}
	return o
}

func (o *Org) newKey(r *rand.Rand, p Project, name string, owner KeyOwner) APIKey {
	return APIKey{
		Object: "organization.project.api_key", ID: "key_" + randID(r, 16), Name: name,
		RedactedValue: "sk-proj-..." + randID(r, 4), CreatedAt: p.CreatedAt + 600,
		OwnerProjectAccess: "active", Owner: owner, projectID: p.ID,
	}
}

// dayRows returns the full-day usage of the day starting at day (Unix
// seconds, UTC midnight), generated from the seed and the day alone.
func (o *Org) dayRows(day int64) []usageRow {
	o.mu.Lock()
	defer o.mu.Unlock()
	if rows, ok := o.byDay[day]; ok {
		return rows
	}
	r := rand.New(rand.NewPCG(o.seed, uint64(day)))
	weekend := time.Unix(day, 0).UTC().Weekday() == time.Saturday || time.Unix(day, 0).UTC().Weekday() == time.Sunday
	var rows []usageRow
	for _, k := range o.keys {
		if !o.keyExists(k, day) && !o.keyExists(k, day+daySeconds-1) {
			continue // not created yet, or deleted before the day
		}
		p := 0.6
		if weekend {
			p = 0.15
		}
		if k.Owner.Type == "service_account" {
			p = 0.85
		}
		if r.Float64() >= p {
			continue
		}
		user := ""
		if k.Owner.User != nil && !o.noUsers {
			user = k.Owner.User.ID
		}
		for _, m := range pick(r, models, 1+r.IntN(2)) {
			in := int64(1000 + r.IntN(400_000))
			cached := in * int64(r.IntN(50)) / 100
			write := cached / 10
			tier := "default"
			if r.IntN(6) == 0 {
				tier = "flex"
			}
			rows = append(rows, usageRow{
				project: k.projectID, user: user, key: k.ID, model: m, tier: tier, batch: r.IntN(10) == 0,
				in: in, cached: cached, cacheWrite: write, out: in / int64(2+r.IntN(6)),
				audioIn: 0, audioOut: 0, requests: int64(1 + r.IntN(300)),
			})
		}
	}
	o.byDay[day] = rows
	return rows
}

// userExists reports whether the user is a member at t.
func (o *Org) userExists(u User, t int64) bool {
	d, gone := o.deleted[u.ID]
	return u.AddedAt <= t && (!gone || t < d)
}

// keyExists reports whether the key exists at t: created, and its owner
// (if a user) still a member.
func (o *Org) keyExists(k APIKey, t int64) bool {
	if k.CreatedAt > t {
		return false
	}
	if k.Owner.User != nil {
		if d, gone := o.deleted[k.Owner.User.ID]; gone && t >= d {
			return false
		}
	}
	return true
}

func pick(r *rand.Rand, from []string, n int) []string {
	idx := r.Perm(len(from))[:n]
	slices.Sort(idx)
	out := make([]string, n)
	for i, j := range idx {
		out[i] = from[j]
	}
	return out
}

// LateRestatement is how long after a late-restated day's end the vendor
// corrects it.
const LateRestatement = 30 * 60 * 60

// LateRestated reports whether the day starting at day (Unix seconds) is one
// the vendor corrects late: every ninth day.
func LateRestated(day int64) bool { return (day/daySeconds)%9 == 4 }

// Filter narrows usage to rows matching every non-empty list.
type Filter struct {
	ProjectIDs, UserIDs, APIKeyIDs, Models []string
	Batch                                  *bool
}

func (f Filter) match(row usageRow) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(f.ProjectIDs, row.project) && in(f.UserIDs, row.user) && in(f.APIKeyIDs, row.key) &&
		in(f.Models, row.model) && (f.Batch == nil || *f.Batch == row.batch)
}

// completions returns the bucket of the day starting at day, as of now,
// grouped by groupBy: the rows the vendor would return. A day after now's is
// empty; now's own day is partial, its counts scaled by the part of the day
// elapsed, as a live organization's current bucket grows through the day.
func (o *Org) completions(day, now int64, groupBy []string, f Filter, first int64) []CompletionsResult {
	if day < first || day > now {
		return []CompletionsResult{}
	}
	base := o.dayRows(day)
	o.mu.Lock()
	extra := o.restate[day]
	base = append(slices.Clip(base), o.added[day]...)
	o.mu.Unlock()
	if LateRestated(day) && now < day+daySeconds+LateRestatement && len(base) > 0 {
		// Some days are corrected late: until then their first row reads
		// 1,000 input tokens short.
		extra -= min(1000, base[0].in-base[0].cached-base[0].cacheWrite)
	}
	num, den := int64(1), int64(1)
	if now < day+daySeconds {
		num, den = now-day, daySeconds
	}
	by := map[string]bool{}
	for _, g := range groupBy {
		by[g] = true
	}
	str := func(dim, v string) *string {
		if !by[dim] || v == "" {
			return nil
		}
		return &v
	}
	type acc struct {
		res CompletionsResult
		key string
	}
	groups := map[string]*acc{}
	for i, row := range base {
		if !f.match(row) {
			continue
		}
		if i == 0 {
			row.in += extra
		}
		scale := func(v int64) int64 { return v * num / den }
		res := CompletionsResult{
			Object:      "organization.usage.completions.result",
			ProjectID:   str("project_id", row.project),
			UserID:      str("user_id", row.user),
			APIKeyID:    str("api_key_id", row.key),
			Model:       str("model", row.model),
			ServiceTier: str("service_tier", row.tier),
		}
		if by["batch"] {
			b := row.batch
			res.Batch = &b
		}
		k := fmt.Sprint(deref(res.ProjectID), "|", deref(res.UserID), "|", deref(res.APIKeyID), "|",
			deref(res.Model), "|", res.Batch != nil && *res.Batch, "|", deref(res.ServiceTier))
		a := groups[k]
		if a == nil {
			a = &acc{res: res, key: k}
			groups[k] = a
		}
		in, cached, write := scale(row.in), scale(row.cached), scale(row.cacheWrite)
		a.res.InputTokens += in
		a.res.InputCachedTokens += cached
		a.res.InputCacheWriteTokens += write
		a.res.InputUncachedTokens += in - cached - write
		a.res.OutputTokens += scale(row.out)
		a.res.InputAudioTokens += scale(row.audioIn)
		a.res.OutputAudioTokens += scale(row.audioOut)
		a.res.NumModelRequests += scale(row.requests)
	}
	out := make([]*acc, 0, len(groups))
	for _, a := range groups {
		if a.res.NumModelRequests > 0 {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b *acc) int { return cmp.Compare(a.key, b.key) })
	res := make([]CompletionsResult, len(out))
	for i, a := range out {
		res[i] = a.res
	}
	return res
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
