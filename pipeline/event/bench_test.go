package event_test

import (
	"testing"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// BenchmarkSeal measures JCS canonicalization plus the SHA-256 hash and data
// digest of one usage event, on one core.
func BenchmarkSeal(b *testing.B) {
	v := sample()
	data := []byte(v.Data)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.Seal(v.Event, data, v.Salt, event.Source{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
