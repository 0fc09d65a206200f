package clickhouse

import (
	"bytes"
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
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

// Group keys compare as their groups do — open last, then value by value
// — and are equal only for the same group, whatever bytes the values hold.
func FuzzGroupKey(f *testing.F) {
	f.Add(false, "a", "b", true, "a\x00b", "")
	f.Add(false, "a\x00", "b", false, "a", "\x00b") // the same bytes, were NULs not escaped
	f.Add(true, "", "\x01", true, "\x00", "\x01")
	f.Fuzz(func(t *testing.T, openA bool, a0, a1 string, openB bool, b0, b1 string) {
		a, b := []string{a0, a1}, []string{b0, b1}
		want := cmp.Or(cmp.Compare(b2i(openA), b2i(openB)), slices.Compare(a, b))
		if got := bytes.Compare(groupKey(nil, openA, a), groupKey(nil, openB, b)); got != want {
			t.Fatalf("keys of (%v %q) and (%v %q) compare %d, the groups %d", openA, a, openB, b, got, want)
		}
	})
}
