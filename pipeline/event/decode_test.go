package event

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Whatever the bytes, the direct decoder either declines them or reads
// exactly what encoding/json reads.
func FuzzDecodeRecord(f *testing.F) {
	seal := func(tenant, key, data string) []byte {
		r, err := Seal(Event{Tenant: tenant, Seq: 7, Prev: Genesis, Kind: Fact, Vendor: "openai", Stream: "usage.completions",
			Key: json.RawMessage(key), Rev: 2, ObservedAt: "2026-11-27T12:00:00Z"}, []byte(data), strings.Repeat("ab", 32), Source{Partition: 3, Offset: 99})
		if err != nil {
			f.Fatal(err)
		}
		return r.Marshal()
	}
	f.Add(seal("acme", `{"id":"a"}`, `{"input_tokens":1,"model":"m"}`))
	f.Add(seal(`a"c\me`, `{"group_set":["a","b"],"id":"a\u00e9"}`, `null`))
	f.Add(seal("acme", `{"id":"}{"}`, `{"s":"x\"}"}`))
	f.Add([]byte(`{"event":{},"hash":"","data":1,"salt":"","source":{"partition":0,"offset":0}}`))
	sealed, _ := Seal(Event{Tenant: "acme", Seq: 1, Prev: Genesis, Kind: Fact, Vendor: "openai", Stream: "costs",
		Key: json.RawMessage(`{"id":"a"}`), ObservedAt: "2026-11-27T12:00:00Z"}, []byte(`{}`), strings.Repeat("ab", 32), Source{})
	sealed.Sealed = []byte("\x00 any bytes \xff")
	f.Add(sealed.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		if !ok || fast.Event.V != Version || !json.Valid(fast.Event.Key) || fast.Sealed == nil && !json.Valid(fast.Data) {
			return
		}
		slow, err := decodeGeneric(b)
		if err != nil {
			t.Fatalf("the direct decoder took a record encoding/json refuses (%v): %q", err, b)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("the direct decoder differs (-json +direct) on %q:\n%s", b, diff)
		}
	})
}

func BenchmarkDecodeRecord(b *testing.B) {
	r, err := Seal(Event{Tenant: "acme", Seq: 7, Prev: Genesis, Kind: Fact, Vendor: "openai", Stream: "usage.completions",
		Key:        json.RawMessage(`{"api_key_id":"key_abc","batch":"false","bucket_start":"2026-11-26T00:00:00Z","bucket_width":"1d","endpoint":"completions","group_set":["api_key_id","batch","model","project_id","service_tier","user_id"],"model":"gpt-6-sol","project_id":"proj_abc","service_tier":"default","user_id":"user-abc"}`),
		ObservedAt: "2026-11-27T12:00:00Z"}, []byte(`{"api_key_id":"key_abc","batch":false,"input_cached_tokens":400,"input_tokens":1000,"model":"gpt-6-sol","num_model_requests":5,"object":"organization.usage.completions.result","output_tokens":500,"project_id":"proj_abc","service_tier":"default","user_id":"user-abc"}`),
		strings.Repeat("ab", 32), Source{Partition: 3, Offset: 99})
	if err != nil {
		b.Fatal(err)
	}
	v := r.Marshal()
	for _, path := range []struct {
		name   string
		decode func([]byte) (*Record, error)
	}{{"direct", DecodeRecord}, {"json", decodeGeneric}} {
		b.Run(path.name, func(b *testing.B) {
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if _, err := path.decode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
