package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// identityOrg feeds hand-made raw records of tenant acme through a real
// processor and ClickHouse sink, and serves the API over the result.
type identityOrg struct {
	*fixture
	store *clickhouse.Store
	ch    driver.Conn // the sink's database, for what the API does not show
	seq   *int
	// tenant is whose records publish writes: acme unless as says.
	tenant string
}

// as returns o publishing tenant's records instead.
func (o *identityOrg) as(tenant string) *identityOrg {
	c := *o
	c.tenant = tenant
	return &c
}

func newIdentityOrg(t *testing.T) *identityOrg {
	t.Helper()
	store, cfg := chtest.NewStore(t)
	var c *topictest.Cluster
	kr, _ := sealtest.Keyring(t) // link records are not signed: any key
	f := serveDeps(t, func(cluster *topictest.Cluster, d *api.Deps) {
		c = cluster
		d.Usage, d.Identity, d.Audit = store, store, store
		d.Integrity = &api.Integrity{Ledger: store, AnchorKey: func(ctx context.Context) (*anchor.Key, error) {
			return anchor.EnsureKey(ctx, cluster.Dial, kr)
		}}
		d.Links = &api.Links{Layout: cluster.Layout, Now: func() time.Time { return linkTime }, Ledger: store,
			Publish: func(ctx context.Context, recs ...*kgo.Record) error {
				return control.Publish(ctx, cluster.Dial, kr, recs...)
			}}
	})
	proc, err := process.New(process.Config{StateDir: filepath.Join(t.TempDir(), "state"), BucketWait: 2 * time.Second},
		process.Deps{Dial: c.Dial, Session: topic.Opts(c.Broker.Addrs()), Layout: c.Layout})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := clickhouse.NewSink(clickhouse.SinkConfig{FlushEvery: 50 * time.Millisecond}, store, clickhouse.SinkDeps{Dial: c.Dial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	go func() { proc.Run(ctx); done <- struct{}{} }()
	go func() { sink.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	conn := chtest.Conn(t, cfg)
	return &identityOrg{fixture: f, store: store, ch: conn, seq: new(int), tenant: "acme"}
}

var (
	day1     = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	linkTime = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
)

// publish writes raw records of acme, fetched at, as a connector would.
func (o *identityOrg) publish(t *testing.T, at time.Time, raws ...*envelope.Raw) {
	t.Helper()
	var recs []*kgo.Record
	for _, r := range raws {
		r.V, r.Tenant, r.Vendor, r.FetchedAt, r.Salt = envelope.Version, o.tenant, "openai", at, envelope.NewSalt()
		recs = append(recs, o.cluster.Layout.Record(topic.Raw, o.tenant, []byte(r.Key()), r.Marshal()))
	}
	if err := control.Publish(t.Context(), o.cluster.Dial, o.keys, recs...); err != nil {
		t.Fatal(err)
	}
}

// usage publishes one settled day of completions: one row per (user, key).
func (o *identityOrg) usage(t *testing.T, day time.Time, rows ...[2]string) {
	t.Helper()
	var raws []*envelope.Raw
	for i, r := range rows {
		data := fmt.Sprintf(`{"object":"organization.usage.completions.result","input_tokens":%d,"output_tokens":1,`+
			`"input_cached_tokens":0,"num_model_requests":1,"project_id":"proj_1","user_id":%q,"api_key_id":%q,`+
			`"model":"gpt-4o","batch":false,"service_tier":"default"}`, 100*(i+1), r[0], r[1])
		if r[0] == "" {
			data = strings.Replace(data, `"user_id":""`, `"user_id":null`, 1)
		}
		raws = append(raws, &envelope.Raw{Stream: "usage.completions",
			Request:  envelope.Request{Path: "/v1/organization/usage/completions"},
			GroupSet: stream.Must(stream.OpenAI, "usage.completions").GroupSet,
			Bucket: &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d",
				Rows: len(rows), Row: i},
			Data: json.RawMessage(data)})
	}
	o.publish(t, day.Add(72*time.Hour), raws...)
}

// walk publishes a complete directory walk of stream.
func (o *identityOrg) walk(t *testing.T, at time.Time, stream, path string, objects ...string) {
	t.Helper()
	*o.seq++
	id := fmt.Sprintf("walk-%d", *o.seq)
	raws := []*envelope.Raw{{Stream: stream, Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.Begin}}}
	for _, obj := range objects {
		raws = append(raws, &envelope.Raw{Stream: stream, Request: envelope.Request{Path: path},
			Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.Item}, Data: json.RawMessage(obj)})
	}
	raws = append(raws, &envelope.Raw{Stream: stream, Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.End, Count: len(objects)}})
	o.publish(t, at, raws...)
}

func user(id, email string) string {
	return fmt.Sprintf(`{"object":"organization.user","id":%q,"name":"N","email":%q,"role":"reader","added_at":1}`, id, email)
}

func key(id, ownerType, ownerID, email string) string {
	owner := fmt.Sprintf(`{"type":"service_account","service_account":{"id":%q,"name":"bot","role":"member","created_at":1}}`, ownerID)
	if ownerType == "user" {
		owner = fmt.Sprintf(`{"type":"user","user":{"id":%q,"name":"N","email":%q,"role":"member","created_at":1}}`, ownerID, email)
	}
	return fmt.Sprintf(`{"object":"organization.project.api_key","id":%q,"name":"k","redacted_value":"sk-...x",`+
		`"created_at":1,"last_used_at":5,"owner":%s}`, id, owner)
}

// attribution returns acme's input tokens of days [from, to) by
// (person id, attribution, api key), once they sum to total.
func (o *identityOrg) attribution(t *testing.T, from, to time.Time, total int) map[string]string {
	t.Helper()
	path := "/v1/usage?start=" + from.Format(time.DateOnly) + "&end=" + to.Format(time.DateOnly) + "&group_by=api_key,person,attribution"
	var got map[string]string
	wait.Until(t, fmt.Sprintf("usage of %s summing to %d", path, total), func() bool {
		status, body := o.get(t, path, o.tokens["acme"])
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, status, body)
		}
		got = map[string]string{}
		sum := 0
		for _, r := range body["rows"].([]any) {
			row := r.(map[string]any)
			n := 0
			fmt.Sscan(fmt.Sprint(row["input_tokens"]), &n)
			sum += n
			got[row["api_key"].(string)] = fmt.Sprintf("%s %s", row["attribution"], row["person"])
		}
		return sum == total
	})
	return got
}

// Issue 6: usage is attributed to people when read, so the directory
// arriving late, a manual link and a deleted user all change who the past
// belongs to without touching the chain.
func TestAttributionFollowsDirectoryAndLinks(t *testing.T) {
	o := newIdentityOrg(t)
	ann, bob, carol := api.PersonID("acme", "ann@example.com"), api.PersonID("acme", "bob@example.com"), api.PersonID("acme", "carol@example.com")
	day2 := day1.Add(24 * time.Hour)

	// Usage first: the vendor names user u_ann on key_ann; the other keys
	// name no user.
	o.usage(t, day1, [2]string{"u_ann", "key_ann"}, [2]string{"", "key_bot"}, [2]string{"", "key_bob"}, [2]string{"", "key_dan"})
	got := o.attribution(t, day1, day2, 1000)
	want := map[string]string{"key_ann": "unmapped ", "key_bot": "unmapped ", "key_bob": "unmapped ", "key_dan": "unmapped "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("before any directory (-want +got):\n%s", diff)
	}

	// The directory arrives: the same past rows now have people.
	dirAt := day1.Add(96 * time.Hour)
	o.walk(t, dirAt, "users", "/v1/organization/users", user("u_ann", "Ann@Example.com"), user("u_bob", "bob@example.com"),
		user("u_dan", "dan@example.com"))
	o.walk(t, dirAt, "project_api_keys", "/v1/organization/projects/proj_1/api_keys",
		key("key_ann", "user", "u_ann", "Ann@Example.com"), key("key_bot", "service_account", "svc_1", ""),
		key("key_bob", "user", "u_bob", "bob@example.com"), key("key_dan", "user", "u_dan", "dan@example.com"))
	dan := api.PersonID("acme", "dan@example.com")
	want = map[string]string{
		"key_ann": "user " + ann,      // the vendor named the user
		"key_bot": "unmapped ",        // a service account's key
		"key_bob": "key_owner " + bob, // inferred from the key's holder
		"key_dan": "key_owner " + dan,
	}
	wait.Until(t, "the directory to attribute the past", func() bool { return cmp.Equal(want, o.attribution(t, day1, day2, 1000)) })

	// The unmapped panel lists, per key, what no user names, with what the
	// directory knows of the key and its inferred person.
	status, body := o.get(t, "/v1/unmapped?start="+day1.Format(time.DateOnly)+"&end="+day2.Format(time.DateOnly), o.tokens["acme"])
	if status != http.StatusOK {
		t.Fatalf("GET /v1/unmapped: %d %v", status, body)
	}
	keys := map[string]string{}
	for _, k := range body["keys"].([]any) {
		k := k.(map[string]any)
		keys[fmt.Sprint(k["api_key"])] = fmt.Sprintf("%v %v %v %v %v %v %v %v %v", k["attribution"], k["name"], k["projects"],
			k["owner_kind"], k["owner_email"], k["person"], k["first_seen"], k["last_seen"], k["input_total"])
	}
	d1 := day1.Format(time.DateOnly)
	wantKeys := map[string]string{
		"key_bot": "unmapped k [proj_1] service_account   " + d1 + " " + d1 + " 200",
		"key_bob": "key_owner k [proj_1] user bob@example.com " + bob + " " + d1 + " " + d1 + " 300",
		"key_dan": "key_owner k [proj_1] user dan@example.com " + dan + " " + d1 + " " + d1 + " 400",
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Fatalf("GET /v1/unmapped (-want +got):\n%s", diff)
	}

	// Each person carries their usage of the window: tokens, last day,
	// projects, and how it was attributed.
	status, body = o.get(t, "/v1/people?start="+d1+"&end="+day2.Format(time.DateOnly), o.tokens["acme"])
	if status != http.StatusOK {
		t.Fatalf("GET /v1/people: %d %v", status, body)
	}
	people := map[string]string{}
	for _, p := range body["people"].([]any) {
		p := p.(map[string]any)
		people[fmt.Sprint(p["email"])] = fmt.Sprintf("%v %v %v %v", p["input_total"], p["last_active"], p["projects"], p["attribution_mix"])
	}
	wantPeople := map[string]string{
		"ann@example.com": "100 " + d1 + " [proj_1] map[user:1]",
		"bob@example.com": "300 " + d1 + " [proj_1] map[key_owner:1]",
		"dan@example.com": "400 " + d1 + " [proj_1] map[key_owner:1]",
	}
	if diff := cmp.Diff(wantPeople, people); diff != "" {
		t.Errorf("GET /v1/people (-want +got):\n%s", diff)
	}

	// An operator links key_dan to carol: past and future activity is hers,
	// and the link is an event on the chain.
	status, body = o.do(t, http.MethodPut, "/v1/links", o.tokens["acme"],
		`{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"key_dan","email":"Carol@Example.com"}`)
	if status != http.StatusOK || body["email"] != "carol@example.com" || body["person"] != carol || body["linked_by"] != "token:test" {
		t.Fatalf("PUT /v1/links: %d %v", status, body)
	}
	o.usage(t, day2, [2]string{"", "key_dan"})
	want["key_dan"] = "user " + carol
	wait.Until(t, "the link to re-attribute key_dan", func() bool { return cmp.Equal(want, o.attribution(t, day1, day2, 1000)) })
	if got := o.attribution(t, day2, day2.Add(24*time.Hour), 100); got["key_dan"] != "user "+carol {
		t.Errorf("key_dan's later usage: %q, want user %s", got["key_dan"], carol)
	}
	var links []*event.Record
	for _, rec := range o.cluster.Events(t) {
		if rec.Event.Kind == event.Link {
			links = append(links, rec)
		}
	}
	if len(links) != 1 || string(links[0].Event.Key) != `{"subject_id":"key_dan","subject_kind":"api_key","subject_vendor":"openai"}` ||
		!strings.Contains(string(links[0].Data), `"email":"carol@example.com"`) || links[0].Event.Vendor != "ogma" {
		t.Fatalf("link events on the chain: %v", links)
	}
	wait.Until(t, "GET /v1/links to show the link with its seq", func() bool {
		_, body := o.get(t, "/v1/links", o.tokens["acme"])
		ls, _ := body["links"].([]any)
		return len(ls) == 1 && fmt.Sprint(ls[0].(map[string]any)["seq"]) == fmt.Sprint(links[0].Event.Seq)
	})

	// Bob leaves a project, not the organization: he is not deleted.
	member := func(id, email string) string {
		return fmt.Sprintf(`{"object":"organization.project.user","id":%q,"name":"N","email":%q,"role":"member","added_at":1}`, id, email)
	}
	o.walk(t, dirAt, "project_users", "/v1/organization/projects/proj_1/users", member("u_bob", "bob@example.com"))
	o.walk(t, dirAt.Add(time.Minute), "project_users", "/v1/organization/projects/proj_1/users")
	wait.Until(t, "bob's absent membership in ClickHouse", func() bool {
		var n uint64
		err := o.ch.QueryRow(t.Context(), "SELECT count() FROM identities WHERE object = 'project_user' AND absent = 1").Scan(&n)
		return err == nil && n == 1
	})
	if _, body := o.get(t, "/v1/people/"+bob, o.tokens["acme"]); strings.Contains(fmt.Sprint(body), "deleted:true") {
		t.Errorf("bob left a project and shows as deleted: %v", body)
	}

	// Ann leaves the organization: her history stays hers.
	o.walk(t, dirAt.Add(time.Hour), "users", "/v1/organization/users", user("u_bob", "bob@example.com"), user("u_dan", "dan@example.com"))
	wait.Until(t, "ann's user to be marked deleted", func() bool {
		status, body := o.get(t, "/v1/people/"+ann, o.tokens["acme"])
		if status != http.StatusOK {
			return false
		}
		for _, s := range body["subjects"].([]any) {
			s := s.(map[string]any)
			if s["kind"] == "user" && s["id"] == "u_ann" && s["deleted"] == true {
				return true
			}
		}
		return false
	})
	if got := o.attribution(t, day1, day2, 1000); !cmp.Equal(want, got) {
		t.Errorf("after ann left (-want +got):\n%s", cmp.Diff(want, got))
	}

	// Removing the link is an event too; the key goes back to its holder.
	if status, body := o.do(t, http.MethodDelete, "/v1/links/openai/api_key/key_dan", o.tokens["acme"], ""); status != http.StatusOK || body["email"] != "" {
		t.Fatalf("DELETE /v1/links: %d %v", status, body)
	}
	want["key_dan"] = "key_owner " + dan
	wait.Until(t, "the unlink to re-attribute key_dan", func() bool { return cmp.Equal(want, o.attribution(t, day1, day2, 1000)) })

	// Other tenants see none of it.
	if _, body := o.get(t, "/v1/people", o.tokens["globex"]); len(body["people"].([]any)) != 0 {
		t.Errorf("globex sees people: %v", body)
	}
}

// Links name a subject and an address exactly; anything else is a 400
// naming the problem, and nothing is published.
func TestLinkRequestsAreChecked(t *testing.T) {
	o := newIdentityOrg(t)
	for _, tc := range []struct{ body, want string }{
		{`{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"k","email":"not an address"}`, "not a single email address"},
		{`{"subject_vendor":"openai","subject_kind":"project","subject_id":"p","email":"a@b.c"}`, "subject_kind"},
		{`{"subject_vendor":"acme","subject_kind":"user","subject_id":"u","email":"a@b.c"}`, "subject_vendor"},
		{`{"subject_vendor":"openai","subject_kind":"user","email":"a@b.c"}`, "subject_id is required"},
		{`{"subject_vendor":"openai","subject_kind":"user","subject_id":"` + strings.Repeat("u", 500_000) + `","email":"a@b.c"}`, "more than the 256"},
		// Ids and addresses people will read hold no control characters or
		// bidirectional overrides (one could pass for another).
		{`{"subject_vendor":"openai","subject_kind":"user","subject_id":"u_\u202eadmin","email":"a@b.c"}`, "U+202E"},
		{`{"subject_vendor":"openai","subject_kind":"user","subject_id":"u_1\n","email":"a@b.c"}`, "U+000A"},
		{`{"subject_vendor":"openai","subject_kind":"user","subject_id":"u_1","email":"a\u2066@b.c"}`, "U+2066"},
	} {
		status, body := o.do(t, http.MethodPut, "/v1/links", o.tokens["acme"], tc.body)
		if status != http.StatusBadRequest || body["code"] != "malformed_request" || !strings.Contains(fmt.Sprint(body["message"]), tc.want) {
			t.Errorf("PUT %.200s: %d %.300v, want 400 naming %q", tc.body, status, body, tc.want)
		}
	}
	// A subject the directory does not know is 404 unless forced; removing
	// a link that is not there is 404, not a new event.
	for _, tc := range []struct{ method, path, body, code string }{
		{http.MethodPut, "/v1/links", `{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"key_nobody","email":"a@b.c"}`, "unknown_subject"},
		{http.MethodDelete, "/v1/links/openai/api_key/key_nobody", "", "not_found"},
	} {
		if status, body := o.do(t, tc.method, tc.path, o.tokens["acme"], tc.body); status != http.StatusNotFound || body["code"] != tc.code {
			t.Errorf("%s %s: %d %v, want 404 %s", tc.method, tc.path, status, body, tc.code)
		}
	}
	if n := len(o.cluster.Records(t, topic.Raw)); n != 0 {
		t.Errorf("%d raw records published by refused links", n)
	}
}

// A key the directory never listed (deleted before Ogma read it) can still
// be linked, explicitly.
func TestForcedLinkToASubjectTheDirectoryDoesNotKnow(t *testing.T) {
	o := newIdentityOrg(t)
	status, body := o.do(t, http.MethodPut, "/v1/links", o.tokens["acme"],
		`{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"key_gone","email":"ada@example.com","force":true}`)
	if status != http.StatusOK || body["email"] != "ada@example.com" {
		t.Fatalf("PUT /v1/links with force: %d %v", status, body)
	}
	if n := len(o.cluster.Records(t, topic.Raw)); n != 1 {
		t.Errorf("%d raw records published, want the link's one", n)
	}
}

// A link the ledger would refuse is not acknowledged: while the sink
// refuses the tenant, PUT /v1/links says so instead of 200.
func TestLinkRefusedWhileTheLedgerRefusesTheTenant(t *testing.T) {
	o := newIdentityOrg(t)
	if err := o.store.Refuse(t.Context(), "acme", "its ledger is not this installation's"); err != nil {
		t.Fatal(err)
	}
	status, body := o.do(t, http.MethodPut, "/v1/links", o.tokens["acme"],
		`{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"key_1","email":"ada@example.com","force":true}`)
	if status != http.StatusBadRequest || body["code"] != "tenant_refused" || !strings.Contains(fmt.Sprint(body["message"]), "not this installation's") {
		t.Errorf("PUT /v1/links for a refused tenant = %d %v, want 400 tenant_refused with the reason", status, body)
	}
	if n := len(o.cluster.Records(t, topic.Raw)); n != 0 {
		t.Errorf("%d raw records published for a refused tenant", n)
	}
}
