package clickhouse

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ogma-dev/ogma/internal/jsonscan"
)

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
