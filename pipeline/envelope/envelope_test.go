package envelope_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/envelope"
)

func sample() *envelope.Raw {
	return &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions",
		Request:   envelope.Request{Path: "/v1/organization/usage/completions", Query: "start_time=1"},
		FetchedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Salt: envelope.NewSalt(),
		Bucket:   &envelope.Bucket{Start: 1788048000, End: 1788134400, Width: "1d", Rows: 2, Row: 1},
		GroupSet: []string{"model", "user_id"}, Data: json.RawMessage(`{"input_tokens":3,"model":"gpt-6-sol"}`)}
}

func TestDecodeRejectsWhatConsumersCannotUse(t *testing.T) {
	cases := []struct {
		name string
		edit func(*envelope.Raw)
		want string
	}{
		{"version", func(r *envelope.Raw) { r.V = 2 }, "version"},
		{"tenant", func(r *envelope.Raw) { r.Tenant = "" }, "tenant"},
		{"fetched_at", func(r *envelope.Raw) { r.FetchedAt = time.Time{} }, "fetched_at"},
		{"salt length", func(r *envelope.Raw) { r.Salt = "ab" }, "salt"},
		{"salt hex", func(r *envelope.Raw) { r.Salt = strings.Repeat("zz", 32) }, "salt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := sample()
			tc.edit(r)
			if _, err := envelope.Decode(r.Marshal()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode = %v, want an error about %s", err, tc.want)
			}
		})
	}
	if _, err := envelope.Decode(sample().Marshal()); err != nil {
		t.Errorf("Decode(valid) = %v", err)
	}
}

func TestKeyIsTheRecordIdentity(t *testing.T) {
	r := sample()
	if got, want := r.Key(), "acme/openai/usage.completions/1788048000/1"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
	d := sample()
	d.Bucket, d.Stream = nil, "users"
	d.Snapshot = &envelope.Snapshot{ID: "s1", Marker: envelope.Item}
	d.Data = json.RawMessage(`{"id":"user-1"}`)
	if got, want := d.Key(), "acme/openai/users/s1/item/user-1"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
}

// The envelope decoder takes outside bytes: it must never panic, and what
// it accepts must survive a round trip.
func FuzzDecode(f *testing.F) {
	f.Add(sample().Marshal())
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"tenant":"a","vendor":"b","stream":"c","fetched_at":"2026-01-01T00:00:00Z","salt":"` + strings.Repeat("0", 64) + `","data":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := envelope.Decode(b)
		if err != nil {
			return
		}
		again, err := envelope.Decode(r.Marshal())
		if err != nil {
			t.Fatalf("re-decoding an accepted envelope: %v", err)
		}
		if !bytes.Equal(again.Marshal(), r.Marshal()) {
			t.Fatalf("round trip changed the envelope:\n%s\n%s", r.Marshal(), again.Marshal())
		}
	})
}
