package openaisim

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
)

// price is USD per 1M input and output tokens, for the costs endpoint;
// the vendor bills any other model it serves at otherPrice.
var price = map[string][2]float64{
	"gpt-6-sol": {2, 10}, "gpt-6-luna": {0.10, 0.50}, "gpt-5.6-terra": {2, 12},
	"gpt-5.4-mini": {0.75, 4.5}, "gpt-4.1-mini": {0.40, 1.60}, "o4-mini": {1.10, 4.40},
}

var otherPrice = [2]float64{3, 12}

// CostsGroupBy lists the group_by dimensions of the costs endpoint.
var CostsGroupBy = []string{"line_item", "project_id"}

// Amount is a cost in a currency; value is dollars, a JSON number.
type Amount struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}

// CostsResult is one row of a costs bucket (organization.costs.result).
type CostsResult struct {
	Object    string  `json:"object"`
	Amount    Amount  `json:"amount"`
	LineItem  *string `json:"line_item"`
	ProjectID *string `json:"project_id"`
	APIKeyID  *string `json:"api_key_id"`
}

// costs returns the cost bucket of a settled day: each (project, model)
// billed for input and output tokens, grouped by groupBy.
func (o *Org) costs(day, now int64, groupBy []string, first int64) []CostsResult {
	if day < first || day > now {
		return []CostsResult{}
	}
	by := map[string]bool{}
	for _, g := range groupBy {
		by[g] = true
	}
	sums := map[[2]string]float64{}
	for _, r := range o.completions(day, now, []string{"model", "project_id"}, Filter{}, first) {
		p, ok := price[*r.Model]
		if !ok {
			p = otherPrice
		}
		if now < day+3*daySeconds {
			// Cost settles late: until two days after the bucket's end the
			// vendor reports 90 % of it.
			p = [2]float64{p[0] * 0.9, p[1] * 0.9}
		}
		for _, item := range []struct {
			kind   string
			amount float64
		}{{"input", float64(r.InputTokens) * p[0] / 1e6}, {"output", float64(r.OutputTokens) * p[1] / 1e6}} {
			k := [2]string{"", ""}
			if by["line_item"] {
				k[0] = *r.Model + ", " + item.kind
			}
			if by["project_id"] {
				k[1] = *r.ProjectID
			}
			sums[k] += item.amount
		}
	}
	o.mu.Lock()
	for _, li := range o.billed[day] {
		k := [2]string{"", ""}
		if by["line_item"] {
			k[0] = li.item
		}
		if by["project_id"] {
			k[1] = li.project
		}
		sums[k] += li.usd
	}
	o.mu.Unlock()
	keys := make([][2]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	out := make([]CostsResult, 0, len(keys))
	for _, k := range keys {
		r := CostsResult{Object: "organization.costs.result",
			Amount: Amount{Value: math.Round(sums[k]*1e7) / 1e7, Currency: "usd"}}
		if by["line_item"] {
			li := k[0]
			r.LineItem = &li
		}
		if by["project_id"] {
			pid := k[1]
			r.ProjectID = &pid
		}
		out = append(out, r)
	}
	return out
}

func (s *Server) costsHandler(w http.ResponseWriter, r *http.Request) {
	rq, ok := s.parseReport(w, r, CostsGroupBy)
	if !ok {
		return
	}
	if width := rq.q.Get("bucket_width"); width != "" && width != "1d" {
		badRequest(w, "bucket_width", "invalid_request_error", fmt.Sprintf("Invalid value for 'bucket_width': %q. The only supported value is '1d'.", width))
		return
	}
	if rq.limit < 1 || rq.limit > 180 {
		badRequest(w, "", "invalid_request_error", fmt.Sprintf("Invalid limit provided: %d. Limit must be less than or equal to 180.", rq.limit))
		return
	}
	s.writeReport(w, rq, func(d int64) any { return s.org.costs(d, rq.now, rq.groupBy, s.first) })
}
