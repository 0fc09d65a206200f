package stream

import (
	"slices"
	"time"
)

// The catalogue: every stream of every vendor Ogma reads, what kind it is,
// and what the rest of Ogma needs to know of it. Connectors, normalizers,
// settlement, the processor, the sinks and the API read it here instead of
// spelling stream names of their own.

// Kind is what a stream holds.
type Kind string

// The kinds of stream.
const (
	// UsageReport: usage in time buckets, chained as facts once settled.
	UsageReport Kind = "usage_report"
	// CostReport: billed cost in time buckets, likewise.
	CostReport Kind = "cost_report"
	// ActivityReport: per-person activity in time buckets (Claude Code),
	// chained likewise; its own metrics, never part of usage totals.
	ActivityReport Kind = "activity_report"
	// AuditLog: events, each identified by its id.
	AuditLog Kind = "audit_log"
	// Directory: objects (users, projects, keys) walked whole.
	Directory Kind = "directory"
)

// Vendors Ogma reads.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
)

// Vendor describes a vendor to the people who connect it.
type Vendor struct {
	// Name is the vendor in envelopes, events, control records and paths.
	Name string
	// Title is how people call it.
	Title string
	// KeyName says what key it takes, as a phrase.
	KeyName string
	// KeyExample is the key's shape in messages.
	KeyExample string
	// Regions are the tenant residencies its organizations can serve.
	Regions []string
	// ResidencyNote says why a tenant of another residency cannot connect it.
	ResidencyNote string
}

// Serves reports whether a tenant of residency may connect the vendor.
func (v Vendor) Serves(residency string) bool {
	return residency == "" || slices.Contains(v.Regions, residency)
}

var vendors = []Vendor{
	{Name: OpenAI, Title: "OpenAI", KeyName: "an OpenAI Admin key", KeyExample: "sk-admin-…", Regions: []string{"us"},
		ResidencyNote: "OpenAI has no EU data residency: OpenAI organizations are always region US, so an EU tenant cannot connect one. " +
			"Connect Claude (Anthropic) instead, which serves EU tenants: PUT /v1/integrations/anthropic."},
	{Name: Anthropic, Title: "Anthropic", KeyName: "an Anthropic Admin key", KeyExample: "sk-ant-admin01-…", Regions: []string{"us", "eu"}},
}

// Vendors returns every vendor Ogma reads, in a fixed order.
func Vendors() []Vendor { return slices.Clone(vendors) }

// VendorOf returns the vendor named name; ok is false for one Ogma does
// not read.
func VendorOf(name string) (Vendor, bool) {
	for _, v := range vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// VendorNames returns the names of every vendor.
func VendorNames() []string {
	out := make([]string, len(vendors))
	for i, v := range vendors {
		out[i] = v.Name
	}
	return out
}

// Spec describes one stream of one vendor.
type Spec struct {
	Vendor string
	// Name is the stream's name in envelopes, cursors and events.
	Name string
	Kind Kind
	// Endpoint names a report in its facts' and manifests' keys.
	Endpoint string
	// Grace is how late the vendor still changes a report bucket: one is
	// settled once its end plus Grace has passed.
	Grace time.Duration
	// GroupSet is a report's primary group set: the dimensions, sorted,
	// that rows counted in totals are grouped by. Rows of another group
	// set never enter totals.
	GroupSet []string
	// Object is what a directory stream's keys name (user, project, …).
	Object string
	// Breakdown marks a report that reads the same usage as another stream
	// grouped another way (Anthropic's usage by account): its rows enter
	// totals only as SplitsKeyless says.
	Breakdown bool
	// SplitsKeyless marks a breakdown whose rows without an API key are
	// counted in totals in place of its endpoint's primary rows without one:
	// keyless traffic (OAuth, such as Claude Code) is attributed to a user
	// only in this breakdown, and it sums to the same tokens.
	SplitsKeyless bool
}

// Report reports whether the stream is a report: rows in time buckets,
// settled after Grace, each bucket with its manifest.
func (s Spec) Report() bool {
	return s.Kind == UsageReport || s.Kind == CostReport || s.Kind == ActivityReport
}

// Projected reports whether the stream's facts are projected into the usage
// or cost tables.
func (s Spec) Projected() bool { return s.Kind == UsageReport || s.Kind == CostReport }

// Counts reports whether a usage or cost row of groupSet, of the API key
// apiKeyID ("" for none), enters totals: rows of the report's primary group
// set — but keyless ones where a breakdown splits them — and a splitting
// breakdown's keyless rows. Every other row is a breakdown of usage a
// counted row holds already.
func (s Spec) Counts(groupSet []string, apiKeyID string) bool {
	switch {
	case !s.Projected() || !slices.Equal(s.GroupSet, groupSet):
		return false
	case s.Breakdown:
		return s.SplitsKeyless && apiKeyID == ""
	}
	return apiKeyID != "" || !keylessSplit(s.Vendor, s.Endpoint)
}

// keylessSplit reports whether a breakdown of vendor's endpoint counts its
// keyless rows.
func keylessSplit(vendor, endpoint string) bool { return keylessSplits[[2]string{vendor, endpoint}] }

// keylessSplits holds each vendor's endpoint with a breakdown that counts
// its keyless rows: Counts asks for every usage row the sink writes.
var keylessSplits = func() map[[2]string]bool {
	m := map[[2]string]bool{}
	for _, b := range catalogue {
		if b.Breakdown && b.SplitsKeyless {
			m[[2]string{b.Vendor, b.Endpoint}] = true
		}
	}
	return m
}()

const (
	usageGrace = time.Hour
	costGrace  = 48 * time.Hour // cost settles late
)

func openAIUsage(endpoint string, groupSet ...string) Spec {
	return Spec{Vendor: OpenAI, Name: "usage." + endpoint, Kind: UsageReport, Endpoint: endpoint, Grace: usageGrace, GroupSet: groupSet}
}

func openAIDirectory(name, object string) Spec {
	return Spec{Vendor: OpenAI, Name: name, Kind: Directory, Object: object}
}

func anthropicDirectory(name, object string) Spec {
	return Spec{Vendor: Anthropic, Name: name, Kind: Directory, Object: object}
}

// catalogue lists every stream, each vendor's in the order its connector
// polls them.
var catalogue = []Spec{
	openAIUsage("completions", "api_key_id", "batch", "model", "project_id", "service_tier", "user_id"),
	{Vendor: OpenAI, Name: "costs", Kind: CostReport, Endpoint: "costs", Grace: costGrace, GroupSet: []string{"line_item", "project_id"}},
	{Vendor: OpenAI, Name: "audit_logs", Kind: AuditLog},
	openAIDirectory("users", "user"),
	openAIDirectory("projects", "project"),
	openAIDirectory("project_users", "project_user"),
	openAIDirectory("project_service_accounts", "service_account"),
	openAIDirectory("project_api_keys", "project_api_key"),
	openAIDirectory("admin_api_keys", "admin_api_key"),
	openAIUsage("embeddings", "api_key_id", "model", "project_id", "user_id"),
	openAIUsage("moderations", "api_key_id", "model", "project_id", "user_id"),
	openAIUsage("images", "api_key_id", "model", "project_id", "size", "source", "user_id"),
	openAIUsage("audio_speeches", "api_key_id", "model", "project_id", "user_id"),
	openAIUsage("audio_transcriptions", "api_key_id", "model", "project_id", "user_id"),
	openAIUsage("vector_stores", "project_id"),
	openAIUsage("code_interpreter_sessions", "project_id"),
	openAIUsage("file_search_calls", "api_key_id", "project_id", "user_id", "vector_store_id"),
	openAIUsage("web_search_calls", "api_key_id", "context_level", "model", "project_id", "user_id"),

	// Anthropic: the messages report within the vendor's cap of five
	// group_by dimensions, then by account (OAuth traffic names its user)
	// as a breakdown of the same usage.
	{Vendor: Anthropic, Name: "usage.messages", Kind: UsageReport, Endpoint: "messages", Grace: usageGrace,
		GroupSet: []string{"api_key_id", "context_window", "model", "service_tier", "workspace_id"}},
	{Vendor: Anthropic, Name: "usage.messages_by_account", Kind: UsageReport, Endpoint: "messages", Grace: usageGrace,
		GroupSet: []string{"account_id", "api_key_id", "model", "workspace_id"}, Breakdown: true, SplitsKeyless: true},
	{Vendor: Anthropic, Name: "costs", Kind: CostReport, Endpoint: "cost_report", Grace: costGrace,
		GroupSet: []string{"description", "workspace_id"}},
	// One actor's day of Claude Code; the actor is keyed by a digest,
	// never by the email the data holds (erasure removes data, not keys).
	{Vendor: Anthropic, Name: "claude_code", Kind: ActivityReport, Endpoint: "claude_code", Grace: 2 * time.Hour, // holds activity older than an hour
		GroupSet: []string{"actor", "customer_type", "terminal_type"}},
	anthropicDirectory("users", "user"),
	anthropicDirectory("workspaces", "workspace"),
	anthropicDirectory("workspace_members", "workspace_member"),
	anthropicDirectory("api_keys", "api_key"),
	anthropicDirectory("invites", "invite"),
}

// byName indexes the catalogue by vendor and name.
var byName = func() map[[2]string]Spec {
	m := make(map[[2]string]Spec, len(catalogue))
	for _, s := range catalogue {
		m[[2]string{s.Vendor, s.Name}] = s
	}
	return m
}()

// Lookup returns the stream name of vendor; ok is false for a stream the
// catalogue does not hold.
func Lookup(vendor, name string) (Spec, bool) {
	s, ok := byName[[2]string{vendor, name}]
	return s, ok
}

// KindOf returns the kind of a stream in the catalogue, "" for one it does
// not hold.
func KindOf(vendor, name string) Kind {
	s, _ := Lookup(vendor, name)
	return s.Kind
}

// Must is Lookup for a stream that must exist: a name Ogma spells itself.
func Must(vendor, name string) Spec {
	s, ok := Lookup(vendor, name)
	if !ok {
		panic("stream: no stream " + vendor + "/" + name + " in the catalogue")
	}
	return s
}

// Of returns every stream of vendor, in the order its connector polls them.
func Of(vendor string) []Spec {
	var out []Spec
	for _, s := range catalogue {
		if s.Vendor == vendor {
			out = append(out, s)
		}
	}
	return out
}

// OfKind returns every stream of vendor of one kind, in catalogue order.
func OfKind(vendor string, k Kind) []Spec {
	var out []Spec
	for _, s := range Of(vendor) {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}
