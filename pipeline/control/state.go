package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/seal"
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
	// Generations holds the last key generation each integration used,
	// connected or not.
	Generations map[VendorKey]int
	// Skipped counts records that did not parse or authenticate:
	// followers skip them rather than stop, since one bad record would
	// stop every start after.
	Skipped int

	// Keys, if set, checks the tags of access records (see [MACHeader]):
	// one whose tag does not check is skipped, and so is an unsigned one
	// on a partition where signing is on. Without Keys every record
	// counts.
	Keys *seal.Keyring
	// on holds the partitions where signing is on; unsigned holds, per
	// partition, the keys whose current value came unsigned before that.
	on       map[int32]bool
	unsigned map[int32]map[string]bool
}

// applyOrSkip applies r, or counts and logs it as skipped.
func (s *State) applyOrSkip(ctx context.Context, log *slog.Logger, r *kgo.Record) {
	if err := s.Apply(r); err != nil {
		s.Skipped++
		if log != nil {
			log.ErrorContext(ctx, "skipping an ogma.control record that does not parse or authenticate", "err", err)
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

// Apply folds one ogma.control record into s. A record it cannot parse or
// authenticate is an error naming its offset; s is unchanged then.
func (s *State) Apply(r *kgo.Record) error {
	key := string(r.Key)
	tagged, err := s.authenticate(r, key)
	if err == nil {
		err = s.apply(key, r.Value)
	}
	if err != nil {
		return fmt.Errorf("control record %q at %d/%d: %w", key, r.Partition, r.Offset, err)
	}
	if s.Keys != nil && signed(key) {
		s.track(r.Partition, key, tagged)
	}
	return nil
}

// authenticate checks r's tag when s has Keys and r is one that must carry
// one, and reports whether it did.
func (s *State) authenticate(r *kgo.Record, key string) (tagged bool, err error) {
	if s.Keys == nil || !signed(key) {
		return false, nil
	}
	if tagged, err = checkTag(s.Keys, r); err != nil {
		return tagged, err
	}
	if !tagged && (key == SignedKey || s.on[r.Partition]) {
		return false, ErrUnsigned
	}
	return tagged, nil
}

// track keeps a partition's signing state: which keys came unsigned before
// its marker, which the marker then drops.
func (s *State) track(p int32, key string, tagged bool) {
	switch {
	case key == SignedKey:
		setKey(&s.on, p, true)
		for k := range s.unsigned[p] {
			s.apply(k, nil) // a delete always applies
		}
		delete(s.unsigned, p)
	case tagged:
		delete(s.unsigned[p], key)
	default:
		if s.unsigned[p] == nil {
			setKey(&s.unsigned, p, map[string]bool{})
		}
		s.unsigned[p][key] = true
	}
}

// apply folds the value of key into s; a nil value deletes it.
func (s *State) apply(key string, value []byte) error {
	kind, rest, _ := strings.Cut(key, "/")
	del := value == nil
	switch kind {
	case "tenant":
		if del {
			delete(s.Tenants, rest)
			return nil
		}
		var t Tenant
		if err := json.Unmarshal(value, &t); err != nil {
			return err
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
		if err := json.Unmarshal(value, &i); err != nil {
			return err
		}
		setKey(&s.Integrations, k, i)
		setKey(&s.Generations, k, max(s.Generations[k], i.Generation))
	case "generation":
		if del {
			return nil // a generation is never given back
		}
		var g Generation
		if err := json.Unmarshal(value, &g); err != nil {
			return err
		}
		k := VendorKey{g.Tenant, g.Vendor}
		setKey(&s.Generations, k, max(s.Generations[k], g.Generation))
	case "token":
		if del {
			delete(s.Tokens, rest)
			return nil
		}
		var t Token
		if err := json.Unmarshal(value, &t); err != nil {
			return err
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
		if err := json.Unmarshal(value, &o); err != nil {
			return err
		}
		setKey(&s.Observed, k, o)
	case "stream":
		if del {
			delete(s.Streams, rest)
			return nil
		}
		var st StreamStatus
		if err := json.Unmarshal(value, &st); err != nil {
			return err
		}
		setKey(&s.Streams, rest, st)
	}
	// Other kinds (the partition count, later additions) are not state.
	return nil
}

// Integration returns k's integration, if connected, and in any case one
// whose Next is a generation never used before.
func (s *State) Integration(k VendorKey) (Integration, bool) {
	i, ok := s.Integrations[k]
	i.Generation = max(i.Generation, s.Generations[k])
	return i, ok
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
	// Keys, if set, checks access records as [State.Keys] does.
	Keys *seal.Keyring

	mu sync.RWMutex
	s  State
}

// Run follows every partition of ogma.control from its start until ctx ends,
// calling caughtUp once the view holds everything committed when Run began.
// A record that does not parse is logged, counted and skipped.
func (v *View) Run(ctx context.Context, dial topic.Dial, l topic.Layout, caughtUp func()) error {
	v.mu.Lock()
	v.s.Keys = v.Keys
	v.mu.Unlock()
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
// folded state, access records checked under kr if it is not nil; records
// that do not parse or authenticate are skipped and counted.
func Load(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring) (*State, error) {
	s := State{Keys: kr}
	err := topic.ReadToEnd(ctx, dial, topic.Control, topic.Partitions(l.Partitions), func(r *kgo.Record) error {
		s.applyOrSkip(ctx, nil, r) // counted in Skipped
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load ogma.control: %w", err)
	}
	return &s, nil
}
