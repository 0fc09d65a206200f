package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// bucket publishes one day's bucket of stream rows, fetched at.
func (o *identityOrg) bucket(t *testing.T, at, day time.Time, name string, rows ...string) {
	t.Helper()
	spec := stream.Must(stream.OpenAI, name)
	var raws []*envelope.Raw
	for i, data := range rows {
		path := map[stream.Kind]string{stream.UsageReport: "/v1/organization/usage/", stream.CostReport: "/v1/organization/"}[spec.Kind] + spec.Endpoint
		raws = append(raws, &envelope.Raw{Stream: name, Request: envelope.Request{Path: path},
			GroupSet: spec.GroupSet,
			Bucket:   &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: len(rows), Row: i},
			Data:     json.RawMessage(data)})
	}
	o.publish(t, at, raws...)
}

// Issue 13: each known cause of a gap between estimate and bill, fed
// through the pipeline as the vendor would report it, is named on its day
// and project: cached input, an unpriced model, a line item without
// tokens, a restatement, a day whose bill is not final.
func TestReconciliationNamesInjectedCauses(t *testing.T) {
	o := newIdentityOrg(t)
	day := func(n int) time.Time { return day1.AddDate(0, 0, n) }
	completion := func(project, model string, input, cached int) string {
		return fmt.Sprintf(`{"object":"organization.usage.completions.result","input_tokens":%d,"output_tokens":0,"input_cached_tokens":%d,`+
			`"num_model_requests":1,"project_id":%q,"user_id":null,"api_key_id":"key_1","model":%q,"batch":false,"service_tier":"default"}`,
			input, cached, project, model)
	}
	cost := func(project, item, amount string) string {
		return fmt.Sprintf(`{"object":"organization.costs.result","amount":{"value":%s,"currency":"usd"},"line_item":%q,"project_id":%q}`,
			amount, item, project)
	}
	late := day(10) // fetched well after every bucket: all settled
	// Day 0: p_cached reads 900 of 1,000 input tokens from the cache (the
	// bill counts them whole); p_even is billed as estimated.
	o.bucket(t, late, day(0), "usage.completions", completion("p_cached", "gpt-4.1-mini", 1000000, 900000), completion("p_even", "gpt-4.1-mini", 1000000, 0))
	o.bucket(t, late, day(0), "costs", cost("p_cached", "gpt-4.1-mini, input", "0.4"), cost("p_even", "gpt-4.1-mini, input", "0.4"))
	// Day 1: a model the table does not price.
	o.bucket(t, late, day(1), "usage.completions", completion("p_new", "gpt-9-imaginary", 1000000, 0))
	o.bucket(t, late, day(1), "costs", cost("p_new", "gpt-9-imaginary, input", "3"))
	// Day 2: fine-tuning billed beside the tokens.
	o.bucket(t, late, day(2), "usage.completions", completion("p_ft", "gpt-4.1-mini", 1000000, 0))
	o.bucket(t, late, day(2), "costs", cost("p_ft", "gpt-4.1-mini, input", "0.4"), cost("p_ft", "ft-gpt-4.1-mini, training", "25"))
	// Day 3: billed as estimated, then restated.
	o.bucket(t, late, day(3), "usage.completions", completion("p_restated", "gpt-4.1-mini", 1000000, 0))
	o.bucket(t, late, day(3), "costs", cost("p_restated", "gpt-4.1-mini, input", "0.4"))
	o.bucket(t, late.Add(time.Hour), day(3), "costs", cost("p_restated", "gpt-4.1-mini, input", "0.44"))
	// Day 4: usage, its bill not settled yet (fetched an hour after the day).
	o.bucket(t, late, day(4), "usage.completions", completion("p_late", "gpt-4.1-mini", 1000000, 0))
	o.bucket(t, day(5).Add(time.Hour), day(4), "costs", cost("p_late", "gpt-4.1-mini, input", "0.2"))

	want := map[string][]string{
		day(0).Format(time.DateOnly) + " p_cached":   {"cached_input"},
		day(0).Format(time.DateOnly) + " p_even":     {},
		day(1).Format(time.DateOnly) + " p_new":      {"unpriced_model"},
		day(2).Format(time.DateOnly) + " p_ft":       {"line_items_without_tokens"},
		day(3).Format(time.DateOnly) + " p_restated": {"restated"},
		day(4).Format(time.DateOnly) + " p_late":     {"cost_not_settled", "no_cost"},
	}
	path := "/v1/insights/reconciliation?start=" + day(0).Format(time.DateOnly) + "&end=" + day(5).Format(time.DateOnly)
	var got map[string][]string
	wait.Until(t, "every cause named on its day and project", func() bool {
		status, body := o.send(t, http.MethodGet, path, o.tokens["acme"], "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var rec struct {
			Days []struct {
				Day, Project string
				Causes       []string
			}
		}
		json.Unmarshal(body, &rec)
		got = map[string][]string{}
		for _, d := range rec.Days {
			got[d.Day+" "+d.Project] = d.Causes
		}
		for k, w := range want {
			if !slices.Equal(got[k], w) {
				return false
			}
		}
		return len(got) == len(want)
	})
}
