package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// crashInput is the raw input of the crash harness: for each tenant, two
// directory walks (the second missing two users), 90 settled days of
// completions, audit events (some twice), restated and repeated buckets,
// manual links and records no one can read — interleaved across tenants
// a unit (a bucket, a walk) at a time, as connectors would publish them.
// The same seed gives the same bytes, salts included.
type crashInput struct {
	tenants []string
	// units[i] are the records of one tenant's unit, in publish order.
	units []crashUnit
	// records counts every raw record; hostile, those that go to the
	// deadletter.
	records, hostile int
}

type crashUnit struct {
	tenant string
	values [][]byte
}

const (
	crashUsers   = 30
	crashDays    = 90
	crashRowsDay = 70
)

func newCrashInput(seed uint64, tenants int) *crashInput {
	rng := rand.New(rand.NewPCG(seed, seed))
	salt := func() string {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return hex.EncodeToString(b)
	}
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	in := &crashInput{}
	perTenant := make([][][][]byte, tenants)
	for ti := range tenants {
		tenant := fmt.Sprintf("crash-%02d", ti)
		in.tenants = append(in.tenants, tenant)
		var units [][][]byte
		raw := func(r *envelope.Raw) []byte {
			r.V, r.Tenant, r.Salt = envelope.Version, tenant, salt()
			if r.Vendor == "" {
				r.Vendor = "openai"
			}
			return r.Marshal()
		}
		walkOf := func(vendor, id, stream, path string, at time.Time, objs []string) {
			unit := [][]byte{raw(&envelope.Raw{Vendor: vendor, Stream: stream, FetchedAt: at, Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.Begin}})}
			for _, o := range objs {
				unit = append(unit, raw(&envelope.Raw{Vendor: vendor, Stream: stream, FetchedAt: at, Request: envelope.Request{Path: path},
					Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.Item}, Data: json.RawMessage(o)}))
			}
			units = append(units, append(unit, raw(&envelope.Raw{Vendor: vendor, Stream: stream, FetchedAt: at,
				Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.End, Count: len(objs)}})))
		}
		walk := func(id, name, path string, at time.Time, objs []string) {
			walkOf(stream.OpenAI, id, name, path, at, objs)
		}
		users := func(from int) []string {
			var out []string
			for u := from; u < crashUsers; u++ {
				out = append(out, fmt.Sprintf(`{"object":"organization.user","id":"user-%02d","name":"U","email":"u%02d@%s.example","role":"reader","added_at":1}`, u, u, tenant))
			}
			return out
		}
		var keys []string
		for k := range crashUsers {
			owner := fmt.Sprintf(`{"type":"user","user":{"id":"user-%02d","email":"u%02d@%s.example","created_at":1}}`, k, k, tenant)
			if k%3 == 0 {
				owner = fmt.Sprintf(`{"type":"service_account","service_account":{"id":"svc-%02d","name":"bot","created_at":1}}`, k)
			}
			keys = append(keys, fmt.Sprintf(`{"object":"organization.project.api_key","id":"key-%02d","name":"k","created_at":1,"last_used_at":%d,"owner":%s}`, k, rng.IntN(1000), owner))
		}
		walk("users-1", "users", "/v1/organization/users", base.Add(-91*24*time.Hour), users(0))
		walk("keys-1", "project_api_keys", "/v1/organization/projects/proj-0/api_keys", base.Add(-91*24*time.Hour), keys)

		// Row j of a day: key j%30 in project j/30 (unique per bucket), the
		// vendor naming its user on six rows of seven.
		tokens := make([][]int, crashDays)
		bucket := func(day int, at time.Time) {
			start := base.Add(time.Duration(day-crashDays-2) * 24 * time.Hour)
			var unit [][]byte
			for j := range crashRowsDay {
				user := fmt.Sprintf(`"user-%02d"`, j%crashUsers)
				if j%7 == 0 {
					user = "null"
				}
				data := fmt.Sprintf(`{"object":"organization.usage.completions.result","input_tokens":%d,"output_tokens":%d,`+
					`"input_cached_tokens":0,"num_model_requests":%d,"project_id":"proj-%d","user_id":%s,"api_key_id":"key-%02d",`+
					`"model":"gpt-%d","batch":false,"service_tier":"default"}`, tokens[day][j], tokens[day][j]/3, 1+j%4, j/crashUsers, user, j%crashUsers, j%5)
				unit = append(unit, raw(&envelope.Raw{Stream: "usage.completions", FetchedAt: at,
					Request:  envelope.Request{Path: "/v1/organization/usage/completions"},
					GroupSet: stream.Must(stream.OpenAI, "usage.completions").GroupSet,
					Bucket: &envelope.Bucket{Start: start.Unix(), End: start.Add(24 * time.Hour).Unix(), Width: "1d",
						Rows: crashRowsDay, Row: j}, Data: json.RawMessage(data)}))
			}
			units = append(units, unit)
		}
		for day := range crashDays {
			tokens[day] = make([]int, crashRowsDay)
			for j := range tokens[day] {
				tokens[day][j] = 1 + rng.IntN(100000)
			}
			bucket(day, base.Add(time.Duration(day-crashDays+1)*24*time.Hour))
		}

		var audit [][]byte
		for a := range 70 {
			id := a % 60 // the last ten are read again
			audit = append(audit, raw(&envelope.Raw{Stream: "audit_logs", FetchedAt: base,
				Data: json.RawMessage(fmt.Sprintf(`{"id":"audit-%03d","type":"api_key.created","effective_at":%d}`, id, 1764000000+id))}))
		}
		units = append(units, audit)

		// Anthropic beside OpenAI (issue 12): its users — ten of them the
		// same people, in other letter case — and their keys, a month of
		// messages usage, and the cost report in cents.
		var aUsers, aKeys []string
		for u := crashUsers - 10; u < crashUsers+5; u++ {
			aUsers = append(aUsers, fmt.Sprintf(`{"id":"user_%02d","type":"user","email":"U%02d@%s.example","name":"U","role":"developer","added_at":"2026-01-01T00:00:00Z"}`, u, u, tenant))
			aKeys = append(aKeys, fmt.Sprintf(`{"id":"apikey_%02d","type":"api_key","name":"k","status":"active","created_at":"2026-01-01T00:00:00Z",`+
				`"created_by":{"id":"user_%02d","type":"user"},"workspace_id":null,"scope":{"type":"organization"},"principal":null}`, u, u))
		}
		walkOf(stream.Anthropic, "a-users-1", "users", "/v1/organizations/users", base.Add(-31*24*time.Hour), aUsers)
		walkOf(stream.Anthropic, "a-keys-1", "api_keys", "/v1/organizations/api_keys", base.Add(-31*24*time.Hour), aKeys)
		report := func(name, path string, day int, rows []string) {
			start := base.Add(time.Duration(day-30) * 24 * time.Hour)
			var unit [][]byte
			for j, data := range rows {
				unit = append(unit, raw(&envelope.Raw{Vendor: stream.Anthropic, Stream: name, FetchedAt: base.Add(3 * time.Hour),
					Request: envelope.Request{Path: path}, GroupSet: stream.Must(stream.Anthropic, name).GroupSet,
					Bucket: &envelope.Bucket{Start: start.Unix(), End: start.Add(24 * time.Hour).Unix(), Width: "1d", Rows: len(rows), Row: j},
					Data:   json.RawMessage(data)}))
			}
			units = append(units, unit)
		}
		for day := range 30 {
			var usage, costs []string
			for k := range 15 {
				in := 1 + rng.IntN(50000)
				usage = append(usage, fmt.Sprintf(`{"uncached_input_tokens":%d,"cache_creation":{"ephemeral_1h_input_tokens":%d,"ephemeral_5m_input_tokens":%d},`+
					`"cache_read_input_tokens":%d,"output_tokens":%d,"server_tool_use":{"web_search_requests":0},"api_key_id":"apikey_%02d",`+
					`"workspace_id":null,"model":"claude-opus-4-6","service_tier":"standard","context_window":"0-200k","inference_geo":null,`+
					`"account_id":null,"service_account_id":null}`, in, in/40, in/10, in/3, in/4, crashUsers-10+k))
			}
			for _, d := range []string{"Input Tokens", "Output Tokens", "Cache Read"} {
				costs = append(costs, fmt.Sprintf(`{"amount":"%d.%06d","currency":"USD","description":"Claude Opus 4.6 Usage - %s","workspace_id":null}`,
					rng.IntN(90000), rng.IntN(1000000), d))
			}
			report("usage.messages", "/v1/organizations/usage_report/messages", day, usage)
			report("costs", "/v1/organizations/cost_report", day, costs)
		}

		// Five days restated (a row changed), five read again unchanged.
		for day := 10; day < 15; day++ {
			tokens[day][0] += 7
			bucket(day, base.Add(time.Hour))
		}
		for day := 20; day < 25; day++ {
			bucket(day, base.Add(time.Hour))
		}
		walk("users-2", "users", "/v1/organization/users", base.Add(2*time.Hour), users(2))

		var links [][]byte
		for i, email := range []string{"carol@" + tenant + ".example", ""} {
			l := normalize.Link{SubjectVendor: "openai", SubjectKind: "api_key", SubjectID: "key-03", Email: email,
				LinkedBy: "token:ops", LinkedAt: base.Add(time.Duration(3+i) * time.Hour)}
			r := normalize.LinkRecord(tenant, l)
			r.Salt = salt()
			links = append(links, r.Marshal())
		}
		units = append(units, links)

		units = append(units, [][]byte{
			[]byte("not json"),
			[]byte(`{"v":1}`),
			[]byte(`{"v":1,"tenant":"` + tenant + `","vendor":"openai","stream":"audit_logs","fetched_at":"2026-11-27T00:00:00Z","salt":"` + salt() + `","data":{"no":"id"}}`),
		})
		in.hostile += 3
		perTenant[ti] = units
	}
	for u := range perTenant[0] {
		for ti, units := range perTenant {
			in.units = append(in.units, crashUnit{tenant: in.tenants[ti], values: units[u]})
			in.records += len(units[u])
		}
	}
	return in
}

// kafkaRecords returns the input as ogma.raw records placed by l.
func (in *crashInput) kafkaRecords(l topic.Layout) []*kgo.Record {
	out := make([]*kgo.Record, 0, in.records)
	for _, u := range in.units {
		for i, v := range u.values {
			out = append(out, l.Record(topic.Raw, u.tenant, fmt.Appendf(nil, "%s/crash/%d/%d", u.tenant, len(out), i), v))
		}
	}
	return out
}
