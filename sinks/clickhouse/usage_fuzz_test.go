package clickhouse

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ogma-dev/ogma/internal/jsonscan"
)

// Whatever the row, the direct usage parser either declines it or reads
// the columns encoding/json reads.
func FuzzParseUsage(f *testing.F) {
	for _, s := range []string{
		`{"api_key_id":"key_1","batch":false,"input_cached_tokens":400,"input_tokens":1000,"model":"gpt-6-sol","num_model_requests":5,` +
			`"object":"organization.usage.completions.result","output_tokens":500,"project_id":"proj_abc","service_tier":"default","user_id":"user-1"}`,
		`{"model":null,"batch":null,"input_tokens":null}`, `{"Model":"m"}`, `{"model":1}`, `{"input_tokens":"1"}`,
		`{"input_tokens":3,"input_tokens":null}`, `{"batch":"yes"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseUsageFlat(b)
		if !ok {
			return
		}
		slow, err := parseUsageJSON(b)
		if err != nil {
			t.Fatalf("the direct parser took a row encoding/json refuses (%v): %s", err, b)
		}
		if fast != slow {
			t.Fatalf("the direct parser differs on %s:\n%+v\n%+v", b, fast, slow)
		}
	})
}

// Whatever the key, valid JSON as DecodeRecord checks it, the direct
// reader reads what encoding/json reads.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		`{"api_key_id":"key_1","batch":"false","bucket_start":"2026-11-26T00:00:00Z","bucket_width":"1d","endpoint":"completions",` +
			`"group_set":["api_key_id","batch","model"],"model":"gpt-6-sol"}`,
		`{"bucket_start":"2026-11-26T00:00:00Z","group_set":[]}`, `{"Bucket_Start":"2026-11-26T00:00:00Z"}`, `{"group_set":null}`,
		`{"group_set":["a\u0041"]}`, `{ "group_set" : [ "a" , "b" ] , "bucket_start" : null }`, `{"bucket_start":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !jsonscan.Valid(b) {
			return
		}
		got, err := parseKey(b)
		var want reportKey
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("parseKey(%s) = %v, encoding/json says %v", b, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("parseKey(%s) = %+v, encoding/json reads %+v", b, got, want)
		}
	})
}
