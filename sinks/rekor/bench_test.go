package rekor_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/event/eventtest"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// BenchmarkVerify sets ogma verify's pace on a bundle of 20k events beside
// what the same events cost to canonicalize and hash alone, in the same
// run: the floor of any verifier that recomputes the chain (target: ≥ 0.8
// of it).
func BenchmarkVerify(b *testing.B) {
	const n = 20_000
	chain := eventtest.Chain(b, "acme", "a", nil, n)
	var buf bytes.Buffer
	w, _ := anchor.NewBundleWriter(&buf, anchor.BundleHeader{Tenant: "acme", FromSeq: 1, Data: true})
	for _, e := range chain {
		w.Event(anchor.BundleEvent{Seq: e.Event.Seq, Hash: e.Hash, Canonical: json.RawMessage(e.Canonical), Data: e.Data, Salt: e.Salt})
	}
	w.Close()
	bundle := buf.Bytes()

	b.Run("loop=jcs-sha256", func(b *testing.B) {
		for b.Loop() {
			for _, e := range chain {
				c, err := event.Canonicalize([]byte(e.Canonical))
				if err != nil {
					b.Fatal(err)
				}
				sha256.Sum256(c)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("loop=verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := rekor.VerifyBundle(b.Context(), bytes.NewReader(bundle), rekor.TrustRoots{})
			if err != nil || rep.Failure != nil || rep.Events != n {
				b.Fatalf("%+v, %v", rep, err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
