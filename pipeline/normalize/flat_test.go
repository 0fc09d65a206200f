package normalize

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ogma-dev/ogma/pipeline/envelope"
)

// Whatever the row and group set, the direct path for usage rows either
// declines them or makes the fact the general path makes.
func FuzzUsageFlat(f *testing.F) {
	f.Add("usage.completions", "api_key_id,batch,model,project_id,service_tier,user_id",
		`{"object":"organization.usage.completions.result","input_tokens":1000,"output_tokens":500,"input_cached_tokens":0,`+
			`"num_model_requests":3,"project_id":"proj_abc","user_id":"user-1","api_key_id":"key_1","model":"gpt-6-sol","batch":false,"service_tier":"default"}`)
	f.Add("usage.images", "model,size", `{"images":2,"model":"dall-e","size":null}`)
	f.Add("usage.completions", "model", `{"model":7}`)
	f.Add("usage.completions", "endpoint", `{"endpoint":"x"}`)
	f.Add("usage.completions", "model,model", `{ "model" : "m" , "model":"n"}`)
	f.Add("usage.completions", "", `{}`)
	f.Fuzz(func(t *testing.T, stream, groups, data string) {
		r := &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: stream,
			FetchedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Salt: strings.Repeat("00", 32),
			Bucket: &envelope.Bucket{Start: 1764115200, End: 1764201600, Width: "1d", Rows: 1}, Data: json.RawMessage(data)}
		if groups != "" {
			r.GroupSet = strings.Split(groups, ",")
		}
		fast, ok := usageFlat(r)
		if !ok {
			return
		}
		slow, err := openAIAny(r)
		if err != nil {
			t.Fatalf("the direct path took a row the general path refuses (%v): %s %v %s", err, stream, r.GroupSet, data)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("the direct path differs (-general +direct) on %s %v %s:\n%s", stream, r.GroupSet, data, diff)
		}
	})
}
