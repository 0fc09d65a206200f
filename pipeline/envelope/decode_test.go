package envelope

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Whatever the bytes, the direct decoder either declines them or reads
// exactly what encoding/json reads.
func FuzzDecodeFast(f *testing.F) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 123, time.UTC)
	seeds := []Raw{
		{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions",
			Request:   Request{Path: "/v1/organization/usage/completions", Query: "start_time=1&group_by=model"},
			FetchedAt: at, Salt: strings.Repeat("ab", 32),
			Bucket:   &Bucket{Start: 1788048000, End: 1788134400, Width: "1d", Rows: 2, Row: 1},
			GroupSet: []string{"model", "user_id"}, Data: json.RawMessage(`{"input_tokens":3,"model":"<gpt>"}`)},
		{V: 1, Tenant: `a"c\me`, Vendor: "openai", Stream: "users", FetchedAt: at, Salt: "x",
			Snapshot: &Snapshot{ID: "s1", Marker: End, Count: 4}},
		{V: 1, Tenant: "acme", Vendor: "openai", Stream: "users", FetchedAt: at,
			Snapshot: &Snapshot{ID: "s1", Marker: Item}, Data: json.RawMessage(`{"id":"user-1","name":"Zoë"}`)},
		{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.images", Bucket: &Bucket{Rows: 0}},
	}
	for _, r := range seeds {
		f.Add(r.Marshal())
	}
	f.Add([]byte(`{"v":1,"tenant":"a","vendor":"b","stream":"c","request":{"path":"","query":""},"fetched_at":"2026-01-01T00:00:00Z","salt":"","group_set":[],"data":null}`))
	prev, ok := decodeFast(seeds[0].Marshal(), &Raw{})
	if !ok {
		f.Fatal("the direct decoder declines Marshal's form")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whether or not strings are shared with a previous record.
		fast, ok := decodeFast(b, &Raw{})
		if shared, sok := decodeFast(b, prev); sok != ok || ok && !cmp.Equal(shared, fast) {
			t.Fatalf("sharing strings with the previous record changes the result on %q", b)
		}
		if !ok {
			return
		}
		var slow Raw
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("the direct decoder took an envelope encoding/json refuses (%v): %q", err, b)
		}
		if diff := cmp.Diff(&slow, fast); diff != "" {
			t.Fatalf("the direct decoder differs (-json +direct) on %q:\n%s", b, diff)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	r := Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions",
		Request:   Request{Path: "/v1/organization/usage/completions", Query: "bucket_width=1d&group_by=model&start_time=1788048000"},
		FetchedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Salt: strings.Repeat("ab", 32),
		Bucket:   &Bucket{Start: 1788048000, End: 1788134400, Width: "1d", Rows: 100, Row: 1},
		GroupSet: []string{"api_key_id", "batch", "model", "project_id", "service_tier", "user_id"},
		Data: json.RawMessage(`{"object":"organization.usage.completions.result","input_tokens":1000,"output_tokens":500,` +
			`"input_cached_tokens":0,"num_model_requests":3,"project_id":"proj_abc","user_id":"user-1","api_key_id":"key_1",` +
			`"model":"gpt-6-sol","batch":false,"service_tier":"default"}`)}
	v := r.Marshal()
	for _, path := range []struct {
		name   string
		decode func([]byte) error
	}{
		{"direct", func(b []byte) error { _, err := Decode(b); return err }},
		{"json", func(b []byte) error { var r Raw; return json.Unmarshal(b, &r) }},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if err := path.decode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
