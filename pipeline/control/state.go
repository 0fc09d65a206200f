package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/topic"
)

// VendorKey names one tenant's integration with one vendor.
type VendorKey struct {
	Tenant string
	Vendor string
}

// State is ogma.control folded: the latest value of every key. The zero value
// is empty and ready to use. It is not safe for concurrent use; see [View].
type State struct {
	Tenants      map[string]Tenant
	Integrations map[VendorKey]Integration
	Tokens       map[string]Token // by hash
	Observed     map[VendorKey]Observed
	Streams      map[string]StreamStatus // by "<tenant>/<vendor>/<stream>"
	// Skipped counts records that did not parse: followers skip them
	// rather than stop, since one bad record would stop every start after.
	Skipped int
}

// applyOrSkip applies r, or counts and logs it as skipped.
func (s *State) applyOrSkip(ctx context.Context, log *slog.Logger, r *kgo.Record) {
	if err := s.Apply(r); err != nil {
		s.Skipped++
		if log != nil {
			log.ErrorContext(ctx, "skipping an ogma.control record that does not parse", "err", err)
		}
	}
}

// KeyInvalid reports whether the vendor rejected the current key of k's
// integration: the connector observed it of that very generation.
func (s *State) KeyInvalid(k VendorKey) bool {
	integ, ok := s.Integrations[k]
	if !ok {
		return false
	}
	o, seen := s.Observed[k]
	// Status is how versions before the observation recorded it.
	return integ.Status == StatusKeyInvalid || seen && o.KeyInvalid && o.Generation == integ.Generation
}

// Apply folds one ogma.control record into s. A record it cannot parse is an
// error naming its offset; s is unchanged then.
func (s *State) Apply(r *kgo.Record) error {
	key := string(r.Key)
	kind, rest, _ := strings.Cut(key, "/")
	del := r.Value == nil
	bad := func(err error) error {
		return fmt.Errorf("control record %q at %d/%d: %w", key, r.Partition, r.Offset, err)
	}
	switch kind {
	case "tenant":
		if del {
			delete(s.Tenants, rest)
			return nil
		}
		var t Tenant
		if err := json.Unmarshal(r.Value, &t); err != nil {
			return bad(err)
		}
		setKey(&s.Tenants, t.ID, t)
	case "integration":
		tenant, vendor, _ := strings.Cut(rest, "/")
		k := VendorKey{tenant, vendor}
		if del {
			delete(s.Integrations, k)
			return nil
		}
		var i Integration
		if err := json.Unmarshal(r.Value, &i); err != nil {
			return bad(err)
		}
		setKey(&s.Integrations, k, i)
	case "token":
		if del {
			delete(s.Tokens, rest)
			return nil
		}
		var t Token
		if err := json.Unmarshal(r.Value, &t); err != nil {
			return bad(err)
		}
		setKey(&s.Tokens, t.Hash, t)
	case "observed":
		tenant, vendor, _ := strings.Cut(rest, "/")
		k := VendorKey{tenant, vendor}
		if del {
			delete(s.Observed, k)
			return nil
		}
		var o Observed
		if err := json.Unmarshal(r.Value, &o); err != nil {
			return bad(err)
		}
		setKey(&s.Observed, k, o)
	case "stream":
		if del {
			delete(s.Streams, rest)
			return nil
		}
		var st StreamStatus
		if err := json.Unmarshal(r.Value, &st); err != nil {
			return bad(err)
		}
		setKey(&s.Streams, rest, st)
	}
	// Other kinds (the partition count, later additions) are not state.
	return nil
}

func setKey[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}

// View is a [State] kept current by following ogma.control. It is safe for
// concurrent use.
type View struct {
	// Log, if set, gets a line for each record skipped.
	Log *slog.Logger

	mu sync.RWMutex
	s  State
}

// Run follows every partition of ogma.control from its start until ctx ends,
// calling caughtUp once the view holds everything committed when Run began.
// A record that does not parse is logged, counted and skipped.
func (v *View) Run(ctx context.Context, dial topic.Dial, l topic.Layout, caughtUp func()) error {
	return topic.Follow(ctx, dial, topic.Control, topic.Partitions(l.Partitions), func(r *kgo.Record) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.s.applyOrSkip(ctx, v.Log, r)
		return nil
	}, caughtUp)
}

// Read calls fn with the current state under a read lock; fn must not keep
// references to its maps.
func (v *View) Read(fn func(*State)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	fn(&v.s)
}

// Load reads every partition of ogma.control to its end and returns the
// folded state; records that do not parse are skipped and counted.
func Load(ctx context.Context, dial topic.Dial, l topic.Layout) (*State, error) {
	var s State
	err := topic.ReadToEnd(ctx, dial, topic.Control, topic.Partitions(l.Partitions), func(r *kgo.Record) error {
		s.applyOrSkip(ctx, nil, r) // counted in Skipped
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load ogma.control: %w", err)
	}
	return &s, nil
}
