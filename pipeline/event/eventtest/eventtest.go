// Package eventtest makes chained events for tests.
package eventtest

import (
	"strings"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// Chain returns n identity events of tenant that continue after (from
// the genesis when after is nil), their data told apart by variant.
func Chain(tb testing.TB, tenant, variant string, after *event.Record, n int) []*event.Record {
	tb.Helper()
	var out []*event.Record
	seq, prev := uint64(0), event.Genesis
	if after != nil {
		seq, prev = after.Event.Seq, after.Hash
	}
	for range n {
		seq++
		rec, err := event.Seal(event.Event{Tenant: tenant, Seq: seq, Prev: prev, Kind: event.Identity, Vendor: "openai",
			Stream: "users", Key: []byte(`{"id":"user-` + variant + `","object":"user"}`), ObservedAt: "2026-11-27T12:00:00Z"},
			[]byte(`{"id":"user-`+variant+`"}`), strings.Repeat("0a", 32), event.Source{Offset: int64(seq)})
		if err != nil {
			tb.Fatal(err)
		}
		prev = rec.Hash
		out = append(out, rec)
	}
	return out
}
