package api

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// Issue 3: bad /v1/usage input gets a 400 with a specific message.
func TestParseUsageNamesTheProblem(t *testing.T) {
	cases := []struct {
		req  *ogmav1.GetUsageRequest
		want string // "" = accepted
	}{
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", GroupBy: "day,model", Vendor: "openai"}, ""},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-02"}, ""},
		{&ogmav1.GetUsageRequest{End: "2026-11-28"}, "start is required"},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01"}, "end is required"},
		{&ogmav1.GetUsageRequest{Start: "11/01/2026", End: "2026-11-28"}, `start "11/01/2026" is not an RFC 3339 date`},
		{&ogmav1.GetUsageRequest{Start: "2026-11-28", End: "2026-11-28"}, "must be after start"},
		{&ogmav1.GetUsageRequest{Start: "2024-01-01", End: "2026-01-01"}, "longer than 366 days"},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", GroupBy: "day,colour"}, `unknown dimension "colour"`},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", GroupBy: "day,day"}, `"day" given twice`},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", Vendor: "gemini"}, `vendor "gemini"`},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", Model: "gpt-6-sol,tts-1", UsageType: "images"}, ""},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", Model: "gpt-6-sol,"}, "model: each value"},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", Person: strings.Repeat("p", 300)}, "person: each value"},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", PageSize: 10001}, "page_size 10001"},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", PageSize: -1}, "page_size -1"},
		{&ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", PageToken: "not-a-token"}, "page_token is not one"},
	}
	for _, tc := range cases {
		_, err := parseUsage("acme", tc.req)
		if tc.want == "" {
			if err != nil {
				t.Errorf("parseUsage(%v) = %v, want accepted", tc.req, err)
			}
			continue
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseUsage(%v) = %v, want InvalidArgument mentioning %q", tc.req, err, tc.want)
		}
	}
}

// A page token continues the query it came from, and no other.
func TestPageTokenBelongsToItsQuery(t *testing.T) {
	req := &ogmav1.GetUsageRequest{Start: "2026-11-01", End: "2026-11-28", GroupBy: "day", PageSize: 10}
	q, err := parseUsage("acme", req)
	if err != nil {
		t.Fatal(err)
	}
	req.PageToken = pageToken(usageQuery(q), 10, q.Limit)
	if next, err := parseUsage("acme", req); err != nil || next.Offset != 10 || next.Limit != 11 {
		t.Errorf("the next page = offset %d limit %d, %v; want offset 10 limit 11", next.Offset, next.Limit, err)
	}
	for name, other := range map[string]*ogmav1.GetUsageRequest{
		"another group_by":  {Start: "2026-11-01", End: "2026-11-28", GroupBy: "model", PageSize: 10, PageToken: req.PageToken},
		"another filter":    {Start: "2026-11-01", End: "2026-11-28", GroupBy: "day", Model: "m", PageSize: 10, PageToken: req.PageToken},
		"another page size": {Start: "2026-11-01", End: "2026-11-28", GroupBy: "day", PageSize: 20, PageToken: req.PageToken},
	} {
		if _, err := parseUsage("acme", other); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: parseUsage = %v, want InvalidArgument", name, err)
		}
	}
	if _, err := parseUsage("globex", req); status.Code(err) != codes.InvalidArgument {
		t.Errorf("another tenant's token: parseUsage = %v, want InvalidArgument", err)
	}
}
