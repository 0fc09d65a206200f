package settle_test

import (
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/settle"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

func TestSettled(t *testing.T) {
	end := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		stream  string
		fetched time.Time
		want    bool
	}{
		{"usage.completions", end.Add(-time.Minute), false},
		{"usage.completions", end.Add(59 * time.Minute), false},
		{"usage.completions", end.Add(time.Hour), true},
		{"costs", end.Add(47 * time.Hour), false},
		{"costs", end.Add(48 * time.Hour), true},
	}
	for _, tc := range cases {
		if got := settle.Settled(end, tc.fetched, stream.Must(stream.OpenAI, tc.stream).Grace); got != tc.want {
			t.Errorf("Settled(%s, fetched %s after end) = %v, want %v", tc.stream, tc.fetched.Sub(end), got, tc.want)
		}
	}
}
