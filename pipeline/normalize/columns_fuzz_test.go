package normalize

import "testing"

// Whatever the row, the direct usage parser either declines it or reads
// the columns encoding/json reads.
func FuzzOpenAIUsage(f *testing.F) {
	for _, s := range []string{
		`{"api_key_id":"key_1","batch":false,"input_cached_tokens":400,"input_tokens":1000,"model":"gpt-6-sol","num_model_requests":5,` +
			`"object":"organization.usage.completions.result","output_tokens":500,"project_id":"proj_abc","service_tier":"default","user_id":"user-1"}`,
		`{"model":null,"batch":null,"input_tokens":null}`, `{"Model":"m"}`, `{"model":1}`, `{"input_tokens":"1"}`,
		`{"input_tokens":3,"input_tokens":null}`, `{"batch":"yes"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := openAIUsageFlat(b)
		if !ok {
			return
		}
		slow, err := openAIUsageJSON(b)
		if err != nil {
			t.Fatalf("the direct parser took a row encoding/json refuses (%v): %s", err, b)
		}
		if fast != slow {
			t.Fatalf("the direct parser differs on %s:\n%+v\n%+v", b, fast, slow)
		}
	})
}
