// Package control defines the records of ogma.control — tenants, vendor
// integrations with their sealed admin keys, API token hashes, and what the
// connectors observed of each integration — and folds them into [State].
//
// ogma.control is compacted: each record's key names what it describes, its
// value is the latest JSON of it, and a nil value (tombstone) deletes it.
// Every record lives on its tenant's partition ([topic.Layout]), so the
// connector that owns a partition sees all of its tenants' records.
//
//	tenant/<tenant>                → Tenant
//	integration/<tenant>/<vendor>  → Integration
//	token/<sha256 of the token>    → Token
//	observed/<tenant>/<vendor>     → Observed
//	stream/<tenant>/<vendor>/<s>   → StreamStatus
//	installation/partitions        → the partition count (package topic)
//	installation/id                → the installation id (package topic)
//	installation/signed            → signing is on for this partition (see [Protect])
//
// Records that grant access (tenants, integrations, tokens) are signed
// under the master key; see [MACHeader].
package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/capability"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Residency is where a tenant's data must stay.
type Residency string

// The residencies a tenant can have.
const (
	ResidencyUS Residency = "us"
	ResidencyEU Residency = "eu"
)

// Tenant is one customer organization of the installation.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Residency Residency `json:"residency"`
	CreatedAt time.Time `json:"created_at"`
}

var tenantID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CheckTenantID returns an error naming id unless it is a tenant id
// ogma.control admits: safe in database and user names.
func CheckTenantID(id string) error {
	if !tenantID.MatchString(id) {
		return fmt.Errorf("tenant id %q: want 1-63 lowercase letters, digits or '-', starting with a letter or digit", id)
	}
	return nil
}

// Validate names the first bad field of t.
func (t Tenant) Validate() error {
	if err := CheckTenantID(t.ID); err != nil {
		return err
	}
	if strings.TrimSpace(t.Name) == "" {
		return fmt.Errorf("tenant %s: name is empty", t.ID)
	}
	if t.Residency != ResidencyUS && t.Residency != ResidencyEU {
		return fmt.Errorf("tenant %s: residency %q: want us or eu", t.ID, t.Residency)
	}
	return nil
}

// Vendors Ogma reads.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
)

// Integration status values.
const (
	StatusOK         = "ok"
	StatusKeyInvalid = "key_invalid"
)

// Integration is a tenant's connection to one vendor: its sealed admin key
// and the key's generation, which grows by one each time a key is replaced.
type Integration struct {
	Tenant     string        `json:"tenant"`
	Vendor     string        `json:"vendor"`
	Generation int           `json:"generation"`
	Sealed     seal.Envelope `json:"sealed"`
	SealedAt   time.Time     `json:"sealed_at"`
	// ConnectedAt is when the tenant first connected this vendor; every
	// stream's history begins a backfill window before it, whatever key
	// generation first reads it.
	ConnectedAt time.Time `json:"connected_at"`
	// Hint shows the key the way the vendor's console does
	// (sk-admin...wxyz), so a person can tell keys apart.
	Hint   string `json:"hint"`
	Status string `json:"status"`
}

// Generation is the last key generation a tenant's vendor integration
// used. It outlives the integration (a disconnect tombstones the
// integration, never this), so that a key connected later takes a
// generation never used before and an old envelope replayed never opens
// as current.
type Generation struct {
	Tenant     string `json:"tenant"`
	Vendor     string `json:"vendor"`
	Generation int    `json:"generation"`
}

// GenerationRecord returns the record of g.
func GenerationRecord(l topic.Layout, g Generation) *kgo.Record {
	return record(l, g.Tenant, generationKey(g.Tenant, g.Vendor), g)
}

// DisconnectRecords returns what disconnecting i publishes, in order: its
// generation, kept for good, then tombstones of its sealed key and of what
// was observed with it. Compaction then removes the envelope from the
// topic.
func DisconnectRecords(l topic.Layout, i Integration) []*kgo.Record {
	return []*kgo.Record{
		GenerationRecord(l, Generation{Tenant: i.Tenant, Vendor: i.Vendor, Generation: i.Generation}),
		Tombstone(IntegrationRecord(l, i)),
		Tombstone(ObservedRecord(l, Observed{Tenant: i.Tenant, Vendor: i.Vendor})),
	}
}

// OffboardRecords returns what deleting tenant publishes: each of its
// integrations disconnected (DisconnectRecords), tombstones of its
// tokens, stream statuses and observations, then of the tenant itself.
func OffboardRecords(l topic.Layout, st *State, tenant string) []*kgo.Record {
	var out []*kgo.Record
	for k, i := range st.Integrations {
		if k.Tenant == tenant {
			out = append(out, DisconnectRecords(l, i)...)
		}
	}
	for k := range st.Observed {
		if k.Tenant == tenant {
			out = append(out, Tombstone(ObservedRecord(l, Observed{Tenant: tenant, Vendor: k.Vendor})))
		}
	}
	for _, tok := range st.Tokens {
		if tok.Tenant == tenant {
			out = append(out, Tombstone(TokenRecord(l, tok)))
		}
	}
	for _, s := range st.Streams {
		if s.Tenant == tenant {
			out = append(out, Tombstone(StreamStatusRecord(l, s)))
		}
	}
	return append(out, Tombstone(TenantRecord(l, Tenant{ID: tenant})))
}

// Next returns the integration's next key generation, as connected at now
// with a key of the given hint; the first connect time is kept, since every
// stream's history begins a backfill window before it. The caller seals
// the key for the returned generation.
func (i Integration) Next(tenant, vendor, hint string, now time.Time) Integration {
	i.Tenant, i.Vendor, i.Generation = tenant, vendor, i.Generation+1
	if i.ConnectedAt.IsZero() {
		i.ConnectedAt = now
	}
	i.SealedAt, i.Status, i.Hint = now, StatusOK, hint
	return i
}

// KeyHint returns a key's hint in the vendor's style: its prefix and last
// four characters (sk-admin...wxyz). Shorter keys show nothing.
func KeyHint(key string) string {
	if len(key) < 16 {
		return "…"
	}
	prefix := key[:3]
	for _, p := range []string{"sk-admin", "sk-proj", "sk-svcacct", "sk-ant-admin01"} {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	return prefix + "..." + key[len(key)-4:]
}

// StreamStatus is how a connector's last poll of one stream of a tenant
// went: when, and why it was skipped (a scope the key lacks).
type StreamStatus struct {
	Tenant   string    `json:"tenant"`
	Vendor   string    `json:"vendor"`
	Stream   string    `json:"stream"`
	LastPoll time.Time `json:"last_poll"`
	Skipped  string    `json:"skipped,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Token is an API bearer token, stored by its hash only.
type Token struct {
	Hash      string    `json:"hash"`
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Observed is what a connector has seen of an integration: the facts behind
// the capability checklist of GET /me/capabilities.
type Observed struct {
	Tenant string `json:"tenant"`
	Vendor string `json:"vendor"`
	// Admin: the usage endpoint answered with this key.
	Admin bool `json:"admin"`
	// Costs: the cost endpoint answered.
	Costs bool `json:"costs"`
	// AuditLogs: an audit event was ingested.
	AuditLogs bool `json:"audit_logs"`
	// ProjectUsers: the organization's user list was readable and not empty.
	ProjectUsers bool `json:"project_users"`
	// PerUserBreakdown: usage grouped by user came back with user ids.
	PerUserBreakdown bool `json:"per_user_breakdown"`
	// ClaudeCode: the Claude Code report answered (Anthropic).
	ClaudeCode bool `json:"claude_code,omitempty"`
	// Workspaces: the workspace list was readable (Anthropic).
	Workspaces bool `json:"workspaces,omitempty"`
	// Generation is the key generation these observations were made with.
	Generation int `json:"generation"`
	// KeyInvalid: the vendor rejected this generation's key. It is the
	// connector's record, never the integration itself: a late rejection
	// of an old generation cannot bring back a disconnected key or roll
	// back a new one.
	KeyInvalid bool `json:"key_invalid,omitempty"`
}

// Merge returns o with every flag that is set in n set too, for the same
// generation; a newer generation starts over from n.
func (o Observed) Merge(n Observed) Observed {
	if n.Generation != o.Generation {
		return n
	}
	o.Admin = o.Admin || n.Admin
	o.Costs = o.Costs || n.Costs
	o.AuditLogs = o.AuditLogs || n.AuditLogs
	o.ProjectUsers = o.ProjectUsers || n.ProjectUsers
	o.PerUserBreakdown = o.PerUserBreakdown || n.PerUserBreakdown
	o.ClaudeCode = o.ClaudeCode || n.ClaudeCode
	o.Workspaces = o.Workspaces || n.Workspaces
	return o
}

// flags are the capability flags of an observation, by checklist name.
func (o *Observed) flags() map[string]*bool {
	return map[string]*bool{
		capability.Admin: &o.Admin, capability.Costs: &o.Costs, capability.AuditLogs: &o.AuditLogs,
		capability.ProjectUsers: &o.ProjectUsers, capability.PerUserBreakdown: &o.PerUserBreakdown,
		capability.ClaudeCode: &o.ClaudeCode, capability.Workspaces: &o.Workspaces,
	}
}

// Saw sets every flag the checklist found true.
func (o *Observed) Saw(cl capability.Checklist) {
	flags := o.flags()
	for _, name := range cl.Names() {
		if f, _ := cl.Get(name); f.Value && flags[name] != nil {
			*flags[name] = true
		}
	}
}

// NewToken returns a new random bearer token and its hash.
func NewToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	token = "ogma_" + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the stored form of a bearer token: hex SHA-256.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Record keys.
func tenantKey(id string) string                  { return "tenant/" + id }
func integrationKey(tenant, vendor string) string { return "integration/" + tenant + "/" + vendor }
func tokenKey(hash string) string                 { return "token/" + hash }
func observedKey(tenant, vendor string) string    { return "observed/" + tenant + "/" + vendor }
func generationKey(tenant, vendor string) string  { return "generation/" + tenant + "/" + vendor }
func streamKey(tenant, vendor, name string) string {
	return "stream/" + stream.ID{Tenant: tenant, Vendor: vendor, Stream: name}.Key()
}

func record(l topic.Layout, tenant, key string, v any) *kgo.Record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("control: marshal %s: %v", key, err)) // our own plain structs
	}
	return l.Record(topic.Control, tenant, []byte(key), b)
}

// TenantRecord returns the ogma.control record of t.
func TenantRecord(l topic.Layout, t Tenant) *kgo.Record {
	return record(l, t.ID, tenantKey(t.ID), t)
}

// IntegrationRecord returns the ogma.control record of i.
func IntegrationRecord(l topic.Layout, i Integration) *kgo.Record {
	return record(l, i.Tenant, integrationKey(i.Tenant, i.Vendor), i)
}

// TokenRecord returns the ogma.control record of t.
func TokenRecord(l topic.Layout, t Token) *kgo.Record {
	return record(l, t.Tenant, tokenKey(t.Hash), t)
}

// StreamStatusRecord returns the ogma.control record of s.
func StreamStatusRecord(l topic.Layout, s StreamStatus) *kgo.Record {
	return record(l, s.Tenant, streamKey(s.Tenant, s.Vendor, s.Stream), s)
}

// Tombstone returns the record that deletes r's key.
func Tombstone(r *kgo.Record) *kgo.Record {
	r.Value = nil
	return r
}

// ObservedRecord returns the ogma.control record of o.
func ObservedRecord(l topic.Layout, o Observed) *kgo.Record {
	return record(l, o.Tenant, observedKey(o.Tenant, o.Vendor), o)
}

// Publish writes records and waits until they are stored; each record
// for ogma.control is signed under kr first ([Sign]).
func Publish(ctx context.Context, dial topic.Dial, kr *seal.Keyring, recs ...*kgo.Record) error {
	for _, r := range recs {
		if r.Topic == topic.Control {
			Sign(kr, r)
		}
	}
	cl, err := dial(topic.ProducerOpt())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("publish control records: %w", err)
	}
	return nil
}
