package stream

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/topic"
)

// CursorView is every stream's latest committed cursor, kept current by
// following ogma.cursors; the API reads backfill progress from it. It is
// safe for concurrent use.
type CursorView struct {
	mu sync.RWMutex
	m  map[string]Cursor
}

// Run follows ogma.cursors until ctx ends, calling caughtUp once it holds
// everything committed when Run began.
func (v *CursorView) Run(ctx context.Context, dial topic.Dial, l topic.Layout, caughtUp func()) error {
	return topic.Follow(ctx, dial, topic.Cursors, topic.Partitions(l.Partitions), func(r *kgo.Record) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.m == nil {
			v.m = map[string]Cursor{}
		}
		if r.Value == nil {
			delete(v.m, string(r.Key))
			return nil
		}
		var c Cursor
		if json.Unmarshal(r.Value, &c) == nil {
			v.m[string(r.Key)] = c
		}
		return nil
	}, caughtUp)
}

// Get returns the cursor of tenant's stream of vendor.
func (v *CursorView) Get(tenant, vendor, stream string) (Cursor, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	c, ok := v.m[ID{Tenant: tenant, Vendor: vendor, Stream: stream}.Key()]
	return c, ok
}
