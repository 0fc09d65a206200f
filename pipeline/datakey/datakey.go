// Package datakey holds the tenants' data keys (ogma.keys), which seal the
// data and salt of every ogma.events record ([event.SealData]).
//
// ogma.events is kept without end and shared by the tenants of a
// partition, so it cannot be rewritten; erasing a tenant destroys its key
// instead (a tombstone, which compaction carries out) and leaves a
// permanent erasure marker, after which no copy of the topic opens the
// tenant's data again while every chain still verifies.
//
//	datakey/<tenant> → Key
//	erased/<tenant>  → Erasure
//
// The processor makes a tenant's key in the transaction of the tenant's
// first sealed event, on the tenant's partition, as the events are.
package datakey

import (
	"cmp"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Key is a tenant's data key, as ogma.keys holds it. It is kept in the
// clear: it guards erasure, not confidentiality — whoever reads ogma.keys
// reads ogma.events too, which held the data in the clear before.
type Key struct {
	Tenant    string    `json:"tenant"`
	Key       []byte    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// Erasure marks a tenant erased, for good: its data key is gone, its raw
// records are no longer processed, and its id is never given out again.
// Only the erasing command writes it, outside any transaction.
type Erasure struct {
	Tenant   string    `json:"tenant"`
	ErasedAt time.Time `json:"erased_at"`
}

func keyKey(tenant string) string     { return "datakey/" + tenant }
func erasureKey(tenant string) string { return "erased/" + tenant }

// keyRecord returns the ogma.keys record of k.
func keyRecord(l topic.Layout, k Key) *kgo.Record {
	return record(l, k.Tenant, keyKey(k.Tenant), k)
}

func record(l topic.Layout, tenant, key string, v any) *kgo.Record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("datakey: marshal %s: %v", key, err)) // our own plain structs
	}
	return l.Record(topic.Keys, tenant, []byte(key), b)
}

// eraseRecords returns what erasing tenant publishes: the erasure marker,
// then the tombstone of its data key.
func eraseRecords(l topic.Layout, tenant string, now time.Time) []*kgo.Record {
	tomb := keyRecord(l, Key{Tenant: tenant})
	tomb.Value = nil
	return []*kgo.Record{record(l, tenant, erasureKey(tenant), Erasure{Tenant: tenant, ErasedAt: now.UTC()}), tomb}
}

// Erase erases what Kafka holds of tenant's data: it publishes the
// erasure marker and the tombstone of the tenant's data key (see
// eraseRecords) and tombstones the tenant's open buckets in
// ogma.provisional, which carry rows in the clear until they settle.
// Compaction then removes the key and the buckets from their topics.
func Erase(ctx context.Context, dial topic.Dial, l topic.Layout, tenant string, now time.Time) error {
	open := map[string]bool{}
	err := topic.ReadToEnd(ctx, dial, topic.Provisional, []int32{l.Partition(tenant)}, func(r *kgo.Record) error {
		if id, _, err := envelope.ParseProvisionalKey(r.Key); err == nil && id.Tenant == tenant {
			open[string(r.Key)] = r.Value != nil
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("erase %s: read ogma.provisional: %w", tenant, err)
	}
	recs := eraseRecords(l, tenant, now)
	for _, key := range slices.Sorted(maps.Keys(open)) {
		if open[key] {
			recs = append(recs, l.Record(topic.Provisional, tenant, []byte(key), nil))
		}
	}
	cl, err := dial(topic.ProducerOpt())
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("erase %s: %w", tenant, err)
	}
	// The marker again, alone: the tombstone's batch is then not the
	// partition's last, which the embedded broker never compacts.
	if err := cl.ProduceSync(ctx, eraseRecords(l, tenant, now)[0]).FirstErr(); err != nil {
		return fmt.Errorf("erase %s: %w", tenant, err)
	}
	return nil
}

// Errors of [Keys].
var (
	ErrErased = errors.New("the tenant's data was erased")
	ErrNoKey  = errors.New("the tenant has no data key")
)

// Keys holds the tenants' data keys as ogma.keys has them, kept current by
// [Keys.Follow], and the keys made for transactions not committed yet. It
// is safe for concurrent use.
type Keys struct {
	// OnMake, if set, is called with each key Key makes, before it is
	// used: the processor keeps it, so that a batch read again after a
	// restart is sealed under it again. Set it before any use.
	OnMake func(Key) error
	// Patience bounds how long Lookup waits for a key held back; zero
	// means a minute and a half.
	Patience time.Duration

	dial   topic.Dial
	layout topic.Layout

	mu     sync.RWMutex
	keys   map[string]dataKey
	erased map[string]bool
}

type dataKey struct {
	aead    cipher.AEAD
	pending bool // made here, its record not committed yet
	rec     Key  // a pending key's record
}

// New returns an empty set of keys read from ogma.keys through dial; a
// zero layout is read from ogma.control when first needed.
func New(dial topic.Dial, l topic.Layout) *Keys {
	return &Keys{dial: dial, layout: l, keys: map[string]dataKey{}, erased: map[string]bool{}}
}

// Follow applies the keys and erasures of ogma.keys as they are
// committed, until ctx ends, so that an erasure takes effect within
// moments; caughtUp is called once it has read what was committed when it
// began (nil for none). A read that fails — the broker restarting — starts
// again a second later, from the start: applying a record twice changes
// nothing.
func (k *Keys) Follow(ctx context.Context, caughtUp func()) {
	once := sync.OnceFunc(func() {
		if caughtUp != nil {
			caughtUp()
		}
	})
	for ctx.Err() == nil {
		if parts, err := k.partitions(ctx); err == nil {
			topic.Follow(ctx, k.dial, topic.Keys, parts, k.apply, once) // returns once a read fails, or ctx ends
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Reload reads ogma.keys to its end: every key and erasure committed
// before the call.
func (k *Keys) Reload(ctx context.Context) error {
	parts, err := k.partitions(ctx)
	if err == nil {
		err = topic.ReadToEnd(ctx, k.dial, topic.Keys, parts, k.apply)
	}
	if err != nil {
		return fmt.Errorf("read data keys: %w", err)
	}
	return nil
}

func (k *Keys) partitions(ctx context.Context) ([]int32, error) {
	k.mu.RLock()
	l := k.layout
	k.mu.RUnlock()
	if l.Partitions == 0 {
		var err error
		if l, err = topic.ReadLayout(ctx, k.dial); err != nil {
			return nil, err
		}
		k.mu.Lock()
		k.layout = l
		k.mu.Unlock()
	}
	return topic.Partitions(l.Partitions), nil
}

func (k *Keys) apply(r *kgo.Record) error {
	kind, tenant, _ := strings.Cut(string(r.Key), "/")
	if kind != "datakey" && kind != "erased" {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case kind == "erased" && r.Value != nil:
		k.erased[tenant] = true
		delete(k.keys, tenant)
	case kind == "datakey" && r.Value == nil:
		delete(k.keys, tenant)
	case kind == "datakey" && !k.erased[tenant]:
		var dk Key
		if err := json.Unmarshal(r.Value, &dk); err != nil {
			return nil // not a key: nothing is sealed under it
		}
		if have, ok := k.keys[tenant]; ok && !have.pending {
			return nil // a key once committed is never replaced: events are sealed under it
		}
		// A committed key replaces a pending one: the tenant's partition
		// moved, and another instance committed first.
		aead, err := event.DataCipher(dk.Key)
		if err != nil {
			return nil
		}
		k.keys[tenant] = dataKey{aead: aead}
	}
	return nil
}

// Get returns tenant's key as known now: ErrErased once the tenant is
// erased, ErrNoKey when no key is known.
func (k *Keys) Get(tenant string) (cipher.AEAD, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.erased[tenant] {
		return nil, ErrErased
	}
	if dk, ok := k.keys[tenant]; ok {
		return dk.aead, nil
	}
	return nil, ErrNoKey
}

// Lookup is Get, reading ogma.keys to its end when no key is known: a
// reader of a sealed event gets its key, or ErrErased. A key commits with
// the first event sealed under it, but a transaction still open on the
// partition (an instance that lost it, until the broker aborts it) can hold
// it back from read-committed readers for a while: Lookup reads again
// until it comes, for up to Patience (default a minute and a half, past the
// default transaction timeout), then returns ErrNoKey.
func (k *Keys) Lookup(ctx context.Context, tenant string) (cipher.AEAD, error) {
	aead, err := k.Get(tenant)
	deadline := time.Now().Add(cmp.Or(k.Patience, 90*time.Second))
	for errors.Is(err, ErrNoKey) {
		if err := k.Reload(ctx); err != nil {
			return nil, err
		}
		if aead, err = k.Get(tenant); !errors.Is(err, ErrNoKey) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return aead, err
}

// Open opens r's sealed data and salt under its tenant's key (see
// Lookup) and reports whether the tenant was erased, r then left sealed.
// A record from before sealing is left as it is.
func (k *Keys) Open(ctx context.Context, r *event.Record) (erased bool, err error) {
	if r.Sealed == nil {
		return false, nil
	}
	aead, err := k.Lookup(ctx, r.Event.Tenant)
	if errors.Is(err, ErrErased) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, r.Open(aead)
}

// Key returns tenant's key, making one when it has none. Until
// [Keys.Commit], a key made here is pending, and pending is the record
// that publishes it: it must commit in the transaction of the first event
// sealed under it. A transaction that aborts is read again with the same
// pending key, so that its retry writes the same bytes. Call Key only for
// a tenant whose keys are up to date ([Keys.Reload] since the
// partition was assigned).
func (k *Keys) Key(tenant string, now time.Time) (aead cipher.AEAD, pending *kgo.Record, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.erased[tenant] {
		return nil, nil, ErrErased
	}
	dk, ok := k.keys[tenant]
	if !ok {
		rec := Key{Tenant: tenant, Key: make([]byte, event.DataKeySize), CreatedAt: now.UTC()}
		rand.Read(rec.Key)
		if k.OnMake != nil {
			if err := k.OnMake(rec); err != nil {
				return nil, nil, err
			}
		}
		if dk, err = pendingKey(rec); err != nil {
			return nil, nil, err
		}
		k.keys[tenant] = dk
	}
	if dk.pending {
		pending = keyRecord(k.layout, dk.rec) // the processor's layout, never zero
	}
	return dk.aead, pending, nil
}

func pendingKey(rec Key) (dataKey, error) {
	aead, err := event.DataCipher(rec.Key)
	return dataKey{aead: aead, pending: true, rec: rec}, err
}

// Pend takes rec as its tenant's pending key — one that [Keys.OnMake]
// kept — unless the tenant has a key or was erased, and reports whether it
// did.
func (k *Keys) Pend(rec Key) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[rec.Tenant]; ok || k.erased[rec.Tenant] {
		return false, nil
	}
	dk, err := pendingKey(rec)
	if err != nil {
		return false, err
	}
	k.keys[rec.Tenant] = dk
	return true, nil
}

// Commit marks the pending keys of tenants committed: the transaction
// that published them did. A key made but not published yet (its tenant's
// records made no event) stays pending.
func (k *Keys) Commit(tenants ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range tenants {
		if dk, ok := k.keys[t]; ok && dk.pending {
			dk.pending = false
			k.keys[t] = dk
		}
	}
}
