package normalize_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
)

var groupSet = []string{"api_key_id", "batch", "model", "project_id", "service_tier", "user_id"}

func usage(data string) *envelope.Raw {
	return &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions",
		FetchedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Salt: strings.Repeat("00", 32), GroupSet: groupSet,
		Bucket: &envelope.Bucket{Start: 1764115200, End: 1764201600, Width: "1d", Rows: 1}, Data: json.RawMessage(data)}
}

func TestUsageKeyNamesEveryDimension(t *testing.T) {
	f, err := normalize.Normalize(usage(`{"model":"gpt-6-sol","user_id":null,"batch":true,"input_tokens":3,"project_id":"proj_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"api_key_id":"","batch":"true","bucket_start":"2025-11-26T00:00:00Z","bucket_width":"1d","endpoint":"completions",` +
		`"group_set":["api_key_id","batch","model","project_id","service_tier","user_id"],"model":"gpt-6-sol","project_id":"proj_1",` +
		`"service_tier":"","user_id":""}`
	if string(f.Key) != want {
		t.Errorf("key = %s\nwant  %s", f.Key, want)
	}
	if f.Kind != event.Fact || string(f.Data) != `{"batch":true,"input_tokens":3,"model":"gpt-6-sol","project_id":"proj_1","user_id":null}` {
		t.Errorf("fact = %s %s", f.Kind, f.Data)
	}
}

func TestDirectoryDedupeIgnoresLastUsed(t *testing.T) {
	a, _ := normalize.DirectoryDigest([]byte(`{"id":"key_1","last_used_at":1,"owner":{"user":{"id":"u"}}}`))
	b, _ := normalize.DirectoryDigest([]byte(`{"id":"key_1","last_used_at":9,"owner":{"user":{"id":"u"}}}`))
	c, _ := normalize.DirectoryDigest([]byte(`{"id":"key_1","last_used_at":9,"owner":{"user":{"id":"v"}}}`))
	if a != b || a == c {
		t.Errorf("digests: last_used_at changes it: %v; the owner does not: %v", a != b, a == c)
	}
}

func TestBadRecordsAreErrors(t *testing.T) {
	cases := []*envelope.Raw{
		usage(`[1,2]`),
		usage(`{"model":{"nested":1}}`),
		usage(`{"a":1} {"b":2}`),
		{V: 1, Tenant: "acme", Vendor: "openai", Stream: "users", Data: json.RawMessage(`{"email":"x@y"}`)},
		{V: 1, Tenant: "acme", Vendor: "nobody", Stream: "users", Data: json.RawMessage(`{"id":"1"}`)},
	}
	for _, r := range cases {
		var ne *normalize.Error
		if _, err := normalize.Normalize(r); !errors.As(err, &ne) {
			t.Errorf("Normalize(%s %s) = %v, want a *normalize.Error for the deadletter", r.Stream, r.Data, err)
		}
	}
}

// Vendor payloads are outside input: normalizing never panics, what it
// accepts is canonical (canonicalizing again changes nothing), and the
// same input gives the same fact.
func FuzzNormalize(f *testing.F) {
	f.Add("usage.completions", `{"model":"gpt-6-sol","user_id":"user-1","input_tokens":1e3,"batch":false}`)
	f.Add("users", `{"id":"user-1","email":"a@b","api_key_last_used_at":5}`)
	f.Add("project_api_keys", `{"id":"key_1","owner":{"type":"user","user":{"id":"u"}},"last_used_at":null}`)
	f.Add("usage.completions", `{"model":1.5e300,"batch":"x"}`)
	f.Add("links", `{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"key_1","email":"a@b.c","linked_by":"t","linked_at":"2026-11-27T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, stream, data string) {
		r := usage(data)
		r.Stream = stream
		if stream == normalize.LinkStream {
			r.Vendor = normalize.LinkVendor
		}
		if !strings.HasPrefix(stream, "usage.") {
			r.Bucket = nil
		}
		a, err := normalize.Normalize(r)
		if err != nil {
			return
		}
		for _, b := range [][]byte{a.Key, a.Data} {
			again, err := event.Canonicalize(b)
			if err != nil || string(again) != string(b) {
				t.Fatalf("not canonical: %s (%v)", b, err)
			}
		}
		b, err := normalize.Normalize(r)
		if err != nil || string(a.Key) != string(b.Key) || string(a.Data) != string(b.Data) || a.Digest != b.Digest {
			t.Fatal("normalizing twice differs")
		}
	})
}

func TestLinks(t *testing.T) {
	at := `"linked_by":"token:ab12","linked_at":"2026-11-27T10:00:00Z"`
	tests := []struct {
		name, data, key, err string
	}{
		{name: "link a key", data: `{"subject_vendor":"openai","subject_kind":"api_key","subject_id":"key_1","email":"ann@example.com",` + at + `}`,
			key: `{"subject_id":"key_1","subject_kind":"api_key","subject_vendor":"openai"}`},
		{name: "unlink", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"user-1","email":"",` + at + `}`,
			key: `{"subject_id":"user-1","subject_kind":"user","subject_vendor":"openai"}`},
		{name: "upper-case email", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"u","email":"Ann@example.com",` + at + `}`, err: "not lower-cased"},
		{name: "two addresses", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"u","email":"a@b.c, d@e.f",` + at + `}`, err: "not a single address"},
		{name: "unknown kind", data: `{"subject_vendor":"openai","subject_kind":"project","subject_id":"p",` + at + `}`, err: "subject_kind"},
		{name: "unknown field", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"u","extra":1,` + at + `}`, err: "unknown field"},
		{name: "nobody linked it", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"u"}`, err: "linked_by"},
		// One tenant's huge link once made an event over the broker's limit
		// and stalled every tenant on its partition.
		{name: "huge subject id", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"` + strings.Repeat("u", 500_000) + `",` + at + `}`,
			err: "more than the 256"},
		{name: "huge email", data: `{"subject_vendor":"openai","subject_kind":"user","subject_id":"u","email":"` + strings.Repeat("a", 300) + `@example.com",` + at + `}`,
			err: "more than the 254"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := usage(tt.data)
			r.Vendor, r.Stream, r.Bucket = normalize.LinkVendor, normalize.LinkStream, nil
			f, err := normalize.Normalize(r)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != "link" || string(f.Key) != tt.key {
				t.Errorf("kind %s key %s, want link %s", f.Kind, f.Key, tt.key)
			}
		})
	}
}
