package event_test

import (
	"testing"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// BenchmarkSeal measures the canonical bytes plus the SHA-256 hash and data
// digest of one usage event, on one core: through a JCS parser (Seal), and
// written directly for a canonical key (SealCanonicalKey, the processor's).
func BenchmarkSeal(b *testing.B) {
	v := sample()
	data := []byte(v.Data)
	for _, bc := range []struct {
		name string
		seal func(event.Event, []byte, string, event.Source) (*event.Record, error)
	}{{"jcs", event.Seal}, {"direct", event.SealCanonicalKey}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.seal(v.Event, data, v.Salt, event.Source{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
