// Package settle decides when a vendor report bucket is final. A bucket is
// settled — and its rows become chained facts — once bucket_end + grace ≤
// fetched_at, the grace being how late the vendor still changes a bucket;
// before that it is provisional. The connector and the processor share
// this one rule: the connector publishes a bucket again when it settles, so
// that the processor sees its settled rows even when they did not change.
// Each stream's grace is in the catalogue (pipeline/stream).
package settle

import (
	"time"
)

// Settled reports whether a bucket ending at end, fetched at fetched, is
// final for a stream with the given grace.
func Settled(end, fetched time.Time, grace time.Duration) bool {
	return !end.Add(grace).After(fetched)
}
