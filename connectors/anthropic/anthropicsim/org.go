package anthropicsim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/shopspring/decimal"
)

const daySeconds = 24 * 60 * 60

// User is an organization member.
type User struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Email   string `json:"email"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	AddedAt string `json:"added_at"`
	added   int64
}

// Workspace is a workspace of the organization.
type Workspace struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Name         string  `json:"name"`
	CreatedAt    string  `json:"created_at"`
	ArchivedAt   *string `json:"archived_at"`
	DisplayColor string  `json:"display_color"`
}

// WorkspaceMember is a user's membership of a workspace.
type WorkspaceMember struct {
	Type          string `json:"type"`
	UserID        string `json:"user_id"`
	WorkspaceID   string `json:"workspace_id"`
	WorkspaceRole string `json:"workspace_role"`
}

// Actor names who created a key or whom a key acts as.
type Actor struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Principal is the identity a personal or service-account key acts as.
type Principal struct {
	Type   string `json:"type"`
	UserID string `json:"user_id,omitempty"`
}

// Scope is where a key may be used.
type Scope struct {
	Type        string  `json:"type"`
	WorkspaceID *string `json:"workspace_id,omitempty"`
}

// APIKey is an API key, with both its deprecated and its 2026 fields.
type APIKey struct {
	ID             string     `json:"id"`
	Type           string     `json:"type"`
	Name           string     `json:"name"`
	PartialKeyHint *string    `json:"partial_key_hint"`
	Status         string     `json:"status"`
	CreatedAt      string     `json:"created_at"`
	ExpiresAt      *string    `json:"expires_at"`
	CreatedBy      *Actor     `json:"created_by"`
	WorkspaceID    *string    `json:"workspace_id"`
	Scope          Scope      `json:"scope"`
	Principal      *Principal `json:"principal"`
	created        int64
	holder         string // the user id the key's usage is attributed to, "" for none
}

// Invite is an invitation to join the organization.
type Invite struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	Status    string `json:"status"`
	InvitedAt string `json:"invited_at"`
	ExpiresAt string `json:"expires_at"`
}

// CacheCreation counts the cache writes of a usage row.
type CacheCreation struct {
	Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
}

// ServerToolUse counts server tool calls of a usage row.
type ServerToolUse struct {
	WebSearchRequests int64 `json:"web_search_requests"`
}

// UsageResult is one row of a messages usage bucket. Grouping fields are
// null unless grouped by.
type UsageResult struct {
	UncachedInputTokens  int64         `json:"uncached_input_tokens"`
	CacheCreation        CacheCreation `json:"cache_creation"`
	CacheReadInputTokens int64         `json:"cache_read_input_tokens"`
	OutputTokens         int64         `json:"output_tokens"`
	ServerToolUse        ServerToolUse `json:"server_tool_use"`
	APIKeyID             *string       `json:"api_key_id"`
	WorkspaceID          *string       `json:"workspace_id"`
	Model                *string       `json:"model"`
	ServiceTier          *string       `json:"service_tier"`
	ContextWindow        *string       `json:"context_window"`
	InferenceGeo         *string       `json:"inference_geo"`
	AccountID            *string       `json:"account_id"`
	ServiceAccountID     *string       `json:"service_account_id"`
}

// CostResult is one row of a cost bucket; amount is a decimal string in
// cents.
type CostResult struct {
	Amount        string  `json:"amount"`
	Currency      string  `json:"currency"`
	Description   *string `json:"description"`
	CostType      *string `json:"cost_type"`
	Model         *string `json:"model"`
	TokenType     *string `json:"token_type"`
	ServiceTier   *string `json:"service_tier"`
	ContextWindow *string `json:"context_window"`
	InferenceGeo  *string `json:"inference_geo"`
	WorkspaceID   *string `json:"workspace_id"`
}

// UsageGroupBy lists the group_by[] dimensions of the messages report.
var UsageGroupBy = []string{"api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo",
	"speed", "account_id", "service_account_id"}

// model is a model the organization uses, with its prices in dollars per
// million tokens (vendor-apis.md §3.2).
type model struct {
	id, title                       string
	in, write5m, write1h, read, out float64
}

var models = []model{
	{"claude-opus-4-6", "Claude Opus 4.6", 5, 6.25, 10, 0.5, 25},
	{"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", 3, 3.75, 6, 0.3, 15},
	{"claude-haiku-4-5", "Claude Haiku 4.5", 1, 1.25, 2, 0.1, 5},
}

// usageRow is usage at the finest grain: one key (or an OAuth account),
// model and tier on one day.
type usageRow struct {
	key, workspace, account, model, tier string
	uncached, w5m, w1h, read, out, web   int64
}

// Org is a deterministic simulated Anthropic organization: its members,
// workspaces, keys and usage follow from the seed alone. Its people are the
// simulated world's people firstUser to firstUser+users-1 (openaisim.Person),
// so an OpenAI organization of the same world shares some of them.
type Org struct {
	seed       uint64
	users      []User
	workspaces []Workspace
	members    []WorkspaceMember
	keys       []APIKey
	invites    []Invite
	deleted    map[string]int64 // user id → when they left; their keys go with them
	coders     map[string]bool  // users who use Claude Code (OAuth traffic)

	mu      sync.Mutex
	byDay   map[int64][]usageRow
	restate map[int64]int64
}

func rfc3339(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }

// ulid returns an id of the vendor's shape: prefix + "01" + 24 characters.
func ulid(r *rand.Rand, prefix string) string {
	const chars = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijkmnopqrstuvwxyz"
	b := make([]byte, 24)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return prefix + "_01" + string(b)
}

func newOrg(cfg Config, epoch int64) *Org {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x616e7468))
	o := &Org{seed: uint64(cfg.Seed), byDay: map[int64][]usageRow{}, restate: map[int64]int64{},
		deleted: map[string]int64{}, coders: map[string]bool{}}
	founded := epoch - 30*daySeconds
	colors := []string{"#6C5BB9", "#D97757", "#2E7D32", "#1565C0"}
	for i := range cfg.Workspaces {
		o.workspaces = append(o.workspaces, Workspace{ID: ulid(r, "wrkspc"), Type: "workspace",
			Name: fmt.Sprintf("Workspace %02d", i+1), CreatedAt: rfc3339(founded + int64(i)*3600), DisplayColor: colors[i%len(colors)]})
	}
	for i := range cfg.Users {
		n := cfg.FirstUser + i
		name, email := openaisim.Person(n)
		if n%3 == 0 {
			// The vendor keeps the letter case a person typed: the same
			// person, spelled otherwise than at OpenAI.
			email = strings.ToUpper(email[:1]) + email[1:strings.Index(email, "@")] + "@Example.com"
		}
		role := "developer"
		switch {
		case i == 0:
			role = "admin"
		case i%4 == 1:
			role = "claude_code_user"
		}
		u := User{ID: ulid(r, "user"), Type: "user", Email: email, Name: name, Role: role, added: founded + int64(i)*60}
		switch {
		case i%25 == 13 && cfg.Days > 40:
			o.deleted[u.ID] = epoch + int64(30+(i*7)%(cfg.Days-20))*daySeconds + 3600
		case i%30 == 17:
			u.added = epoch + int64(60+i%20)*daySeconds + 7200
		}
		u.AddedAt = rfc3339(u.added)
		o.users = append(o.users, u)
		if role == "claude_code_user" {
			o.coders[u.ID] = true
		}
	}
	roles := []string{"workspace_developer", "workspace_user", "workspace_admin"}
	for i, u := range o.users {
		ws := o.workspaces[i%len(o.workspaces)]
		o.members = append(o.members, WorkspaceMember{Type: "workspace_member", UserID: u.ID, WorkspaceID: ws.ID, WorkspaceRole: roles[i%len(roles)]})
		if o.coders[u.ID] {
			continue // Claude Code through OAuth: no key
		}
		k := o.newKey(r, u.Name+"'s key", max(u.added, founded)+600, &ws)
		k.CreatedBy = &Actor{ID: u.ID, Type: "user"}
		if i%5 == 2 {
			// A personal key: bound to its user, not to a workspace.
			k.Name, k.Principal, k.Scope, k.WorkspaceID = u.Name+"'s personal key", &Principal{Type: "user_actor", UserID: u.ID}, Scope{Type: "organization"}, nil
		}
		k.holder = u.ID
		o.keys = append(o.keys, k)
	}
	for _, ws := range o.workspaces {
		// A legacy key with no creator: its usage is unmapped.
		o.keys = append(o.keys, o.newKey(r, ws.Name+" pipeline", founded+1200, &ws))
	}
	for i := range 3 {
		_, email := openaisim.Person(cfg.FirstUser + cfg.Users + i)
		status := []string{"pending", "expired", "deleted"}[i]
		o.invites = append(o.invites, Invite{ID: ulid(r, "invite"), Type: "invite", Email: email, Role: "developer",
			Status: status, InvitedAt: rfc3339(epoch + int64(i)*daySeconds), ExpiresAt: rfc3339(epoch + int64(i+21)*daySeconds)})
	}
	return o
}

func (o *Org) newKey(r *rand.Rand, name string, created int64, ws *Workspace) APIKey {
	hint := "sk-ant-api03-" + ulid(r, "")[3:6] + "..." + ulid(r, "")[3:7]
	id := ws.ID
	return APIKey{ID: ulid(r, "apikey"), Type: "api_key", Name: name, PartialKeyHint: &hint, Status: "active",
		CreatedAt: rfc3339(created), WorkspaceID: &id, Scope: Scope{Type: "workspace", WorkspaceID: &id}, created: created}
}

func (o *Org) userExists(u User, t int64) bool {
	d, gone := o.deleted[u.ID]
	return u.added <= t && (!gone || t < d)
}

func (o *Org) userByID(id string) (User, bool) {
	i := slices.IndexFunc(o.users, func(u User) bool { return u.ID == id })
	if i < 0 {
		return User{}, false
	}
	return o.users[i], true
}

func (o *Org) keyExists(k APIKey, t int64) bool {
	if k.created > t {
		return false
	}
	if d, gone := o.deleted[k.holder]; gone && t >= d {
		return false
	}
	return true
}

// dayRows returns the full-day usage of the day starting at day, from the
// seed and the day alone.
func (o *Org) dayRows(day int64) []usageRow {
	o.mu.Lock()
	defer o.mu.Unlock()
	if rows, ok := o.byDay[day]; ok {
		return rows
	}
	r := rand.New(rand.NewPCG(o.seed, uint64(day)))
	wd := time.Unix(day, 0).UTC().Weekday()
	busy := 0.6
	if wd == time.Saturday || wd == time.Sunday {
		busy = 0.15
	}
	var rows []usageRow
	add := func(key, ws, account string) {
		for _, m := range pickModels(r) {
			in := int64(1000 + r.IntN(300_000))
			tier := "standard"
			if r.IntN(8) == 0 {
				tier = "batch"
			}
			rows = append(rows, usageRow{key: key, workspace: ws, account: account, model: m.id, tier: tier,
				uncached: in, w5m: in / int64(10+r.IntN(10)), w1h: in / int64(40+r.IntN(40)), read: in * int64(r.IntN(60)) / 100,
				out: in / int64(2+r.IntN(6)), web: int64(r.IntN(3)) * int64(r.IntN(5))})
		}
	}
	for _, k := range o.keys {
		if !o.keyExists(k, day) && !o.keyExists(k, day+daySeconds-1) {
			continue
		}
		if r.Float64() >= busy && k.holder != "" || k.holder == "" && r.Float64() >= 0.8 {
			continue
		}
		ws := ""
		if k.Scope.WorkspaceID != nil {
			ws = *k.Scope.WorkspaceID
		}
		add(k.ID, ws, "")
	}
	for _, u := range o.users {
		if !o.coders[u.ID] || !o.userExists(u, day+daySeconds-1) || r.Float64() >= busy {
			continue
		}
		add("", "", u.ID) // OAuth: Claude Code in the default workspace, no key
	}
	o.byDay[day] = rows
	return rows
}

func pickModels(r *rand.Rand) []model {
	n := 1 + r.IntN(2)
	idx := r.Perm(len(models))[:n]
	slices.Sort(idx)
	out := make([]model, n)
	for i, j := range idx {
		out[i] = models[j]
	}
	return out
}

func modelOf(id string) model {
	i := slices.IndexFunc(models, func(m model) bool { return m.id == id })
	return models[i]
}

// LateRestated reports whether the day starting at day (Unix seconds) is
// one the vendor corrects about a day late: every seventh day.
func LateRestated(day int64) bool { return (day/daySeconds)%7 == 3 }

// LateRestatement is how long after a late-restated day's end the vendor
// corrects it.
const LateRestatement = 26 * 60 * 60

// CostDelay is how long after a day's end its costs first appear.
const CostDelay = 6 * 60 * 60

// rowsAt returns the day's rows as of now: nothing for a day not begun, a
// partial day scaled by its elapsed part, a late-restated day short by
// 1,000 uncached tokens in its first row until corrected.
func (o *Org) rowsAt(day, now int64) []usageRow {
	if day > now {
		return nil
	}
	base := slices.Clone(o.dayRows(day))
	o.mu.Lock()
	extra := o.restate[day]
	o.mu.Unlock()
	if LateRestated(day) && now < day+daySeconds+LateRestatement && len(base) > 0 {
		extra -= min(1000, base[0].uncached)
	}
	if len(base) > 0 {
		base[0].uncached += extra
	}
	if now < day+daySeconds {
		num, den := now-day, int64(daySeconds)
		for i := range base {
			b := &base[i]
			for _, v := range []*int64{&b.uncached, &b.w5m, &b.w1h, &b.read, &b.out, &b.web} {
				*v = *v * num / den
			}
		}
	}
	return base
}

// usage returns the messages bucket of the day starting at day as of now,
// grouped by groupBy.
func (o *Org) usage(day, now int64, groupBy []string) []UsageResult {
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
	groups := map[string]*UsageResult{}
	var order []string
	for _, row := range o.rowsAt(day, now) {
		res := UsageResult{APIKeyID: str("api_key_id", row.key), WorkspaceID: str("workspace_id", row.workspace),
			Model: str("model", row.model), ServiceTier: str("service_tier", row.tier), ContextWindow: str("context_window", "0-200k"),
			InferenceGeo: str("inference_geo", "not_available"), AccountID: str("account_id", row.account)}
		k := fmt.Sprint(deref(res.APIKeyID), "|", deref(res.WorkspaceID), "|", deref(res.Model), "|", deref(res.ServiceTier), "|",
			deref(res.ContextWindow), "|", deref(res.InferenceGeo), "|", deref(res.AccountID))
		g := groups[k]
		if g == nil {
			g = &res
			groups[k] = g
			order = append(order, k)
		}
		g.UncachedInputTokens += row.uncached
		g.CacheCreation.Ephemeral5m += row.w5m
		g.CacheCreation.Ephemeral1h += row.w1h
		g.CacheReadInputTokens += row.read
		g.OutputTokens += row.out
		g.ServerToolUse.WebSearchRequests += row.web
	}
	slices.Sort(order)
	out := make([]UsageResult, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
	}
	return out
}

// costs returns the cost bucket of the day starting at day as of now,
// grouped by groupBy: nothing until CostDelay after the day ends (costs are
// late), then per token type of each model, priced, in cents.
func (o *Org) costs(day, now int64, groupBy []string) []CostResult {
	if now < day+daySeconds+CostDelay {
		return nil
	}
	by := map[string]bool{}
	for _, g := range groupBy {
		by[g] = true
	}
	type acc struct {
		res   CostResult
		cents decimal.Decimal
	}
	groups := map[string]*acc{}
	var order []string
	million := decimal.NewFromInt(1_000_000)
	for _, row := range o.rowsAt(day, now) {
		m := modelOf(row.model)
		batch := decimal.NewFromInt(1)
		if row.tier == "batch" {
			batch = decimal.RequireFromString("0.5")
		}
		for _, t := range []struct {
			tokenType, label string
			n                int64
			price            float64
		}{
			{"uncached_input_tokens", "Input Tokens", row.uncached, m.in},
			{"output_tokens", "Output Tokens", row.out, m.out},
			{"cache_read_input_tokens", "Cache Read", row.read, m.read},
			{"cache_creation.ephemeral_5m_input_tokens", "Cache Write (5m)", row.w5m, m.write5m},
			{"cache_creation.ephemeral_1h_input_tokens", "Cache Write (1h)", row.w1h, m.write1h},
		} {
			if t.n == 0 {
				continue
			}
			// dollars per million tokens → cents
			cents := decimal.NewFromInt(t.n).Mul(decimal.NewFromFloat(t.price)).Mul(decimal.NewFromInt(100)).Div(million).Mul(batch)
			desc := m.title + " Usage - " + t.label
			if row.tier == "batch" {
				desc = m.title + " Batch Usage - " + t.label
			}
			res := CostResult{Currency: "USD"}
			if by["workspace_id"] && row.workspace != "" {
				ws := row.workspace
				res.WorkspaceID = &ws
			}
			if by["description"] {
				tokens, id, tier, cw, geo := "tokens", m.id, row.tier, "0-200k", "not_available"
				tt := t.tokenType
				res.Description, res.CostType, res.Model, res.TokenType, res.ServiceTier, res.ContextWindow, res.InferenceGeo =
					&desc, &tokens, &id, &tt, &tier, &cw, &geo
			}
			k := deref(res.WorkspaceID) + "|" + deref(res.Description)
			a := groups[k]
			if a == nil {
				a = &acc{res: res}
				groups[k] = a
				order = append(order, k)
			}
			a.cents = a.cents.Add(cents)
		}
		if row.web > 0 {
			desc, kind := "Web Search Usage", "web_search"
			res := CostResult{Currency: "USD"}
			if by["workspace_id"] && row.workspace != "" {
				ws := row.workspace
				res.WorkspaceID = &ws
			}
			if by["description"] {
				res.Description, res.CostType = &desc, &kind
			}
			k := deref(res.WorkspaceID) + "|" + deref(res.Description)
			a := groups[k]
			if a == nil {
				a = &acc{res: res}
				groups[k] = a
				order = append(order, k)
			}
			a.cents = a.cents.Add(decimal.NewFromInt(row.web)) // $10 per 1,000: one cent each
		}
	}
	slices.Sort(order)
	out := make([]CostResult, 0, len(order))
	for _, k := range order {
		a := groups[k]
		a.res.Amount = a.cents.StringFixed(6)
		out = append(out, a.res)
	}
	return out
}

// ClaudeCodeRecord is one actor's day of Claude Code.
type ClaudeCodeRecord struct {
	Date             string           `json:"date"`
	Actor            map[string]any   `json:"actor"`
	OrganizationID   string           `json:"organization_id"`
	CustomerType     string           `json:"customer_type"`
	TerminalType     string           `json:"terminal_type"`
	CoreMetrics      map[string]any   `json:"core_metrics"`
	ToolActions      map[string]any   `json:"tool_actions"`
	ModelBreakdown   []map[string]any `json:"model_breakdown"`
	SubscriptionType *string          `json:"subscription_type"`
}

// claudeCode returns the Claude Code records of the day starting at day:
// one per user who used it, once the day is over by an hour (the report
// only holds activity older than an hour).
func (o *Org) claudeCode(day, now int64, orgID string) []ClaudeCodeRecord {
	if now < day+daySeconds+3600 {
		return nil
	}
	byUser := map[string]*ClaudeCodeRecord{}
	var order []string
	for _, row := range o.dayRows(day) {
		if row.account == "" {
			continue
		}
		m := modelOf(row.model)
		cost := decimal.NewFromInt(row.uncached + row.w5m).Mul(decimal.NewFromFloat(m.in)).
			Add(decimal.NewFromInt(row.out).Mul(decimal.NewFromFloat(m.out))).Div(decimal.NewFromInt(10_000)).IntPart()
		breakdown := map[string]any{"model": m.id,
			"tokens":         map[string]any{"input": row.uncached, "output": row.out, "cache_read": row.read, "cache_creation": row.w5m + row.w1h},
			"estimated_cost": map[string]any{"amount": cost, "currency": "USD"}}
		if rec := byUser[row.account]; rec != nil {
			rec.ModelBreakdown = append(rec.ModelBreakdown, breakdown)
			continue
		}
		u, _ := o.userByID(row.account)
		r := rand.New(rand.NewPCG(o.seed^uint64(day), uint64(len(order))))
		byUser[row.account] = &ClaudeCodeRecord{
			Date: rfc3339(day), Actor: map[string]any{"type": "user_actor", "email_address": u.Email},
			OrganizationID: orgID, CustomerType: "api", TerminalType: []string{"vscode", "iTerm.app", "cursor"}[r.IntN(3)],
			CoreMetrics: map[string]any{"num_sessions": 1 + r.IntN(8), "lines_of_code": map[string]any{"added": r.IntN(2000), "removed": r.IntN(900)},
				"commits_by_claude_code": r.IntN(12), "pull_requests_by_claude_code": r.IntN(3)},
			ToolActions:    map[string]any{"edit_tool": map[string]any{"accepted": r.IntN(50), "rejected": r.IntN(6)}},
			ModelBreakdown: []map[string]any{breakdown},
		}
		order = append(order, row.account)
	}
	out := make([]ClaudeCodeRecord, 0, len(order))
	for _, id := range order {
		out = append(out, *byUser[id])
	}
	slices.SortFunc(out, func(a, b ClaudeCodeRecord) int {
		return cmp.Compare(a.Actor["email_address"].(string), b.Actor["email_address"].(string))
	})
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
