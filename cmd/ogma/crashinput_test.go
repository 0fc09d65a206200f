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
		walk := func(id, stream, path string, at time.Time, objs []string) {
			unit := [][]byte{raw(&envelope.Raw{Stream: stream, FetchedAt: at, Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.Begin}})}
			for _, o := range objs {
				unit = append(unit, raw(&envelope.Raw{Stream: stream, FetchedAt: at, Request: envelope.Request{Path: path},
					Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.Item}, Data: json.RawMessage(o)}))
			}
			units = append(units, append(unit, raw(&envelope.Raw{Stream: stream, FetchedAt: at,
				Snapshot: &envelope.Snapshot{ID: id, Marker: envelope.End, Count: len(objs)}})))
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
