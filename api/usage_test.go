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
