package process

import (
	"testing"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// BenchmarkStages times the processor's per-record steps on one goroutine,
// without Kafka: decode (envelope and normalize, the parallel pre-pass)
// and the whole transform (pre-pass and chain step).
func BenchmarkStages(b *testing.B) {
	l := topic.Layout{Partitions: 1}
	recs := topictest.UsageRows(l, "acme", benchStageRows)
	s, err := OpenStore(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var dec envelope.Decoder
		for i := 0; b.Loop(); i++ {
			if d := decode(&dec, s, testKeys, recs[i%len(recs)]); d.err != nil || d.nerr != nil {
				b.Fatal(d.err, d.nerr)
			}
		}
	})
	b.Run("transform", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t := newTransform(s, 0, l, testKeys)
			if err := t.run(recs, -1, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	})
}

const benchStageRows = 2000
