package process

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Store is the processor's local state, in Pebble so that the dedupe map
// does not live in the Go heap. Everything in it can be rebuilt from
// ogma.events; it is a checkpoint, not the source of truth. Keys are
// namespaced by raw partition:
//
//	h/<p>/<tenant>                         → head {seq, hash}
//	d/<p>/<tenant>/<vendor>/<stream>/<key>         → dedupe entry (binary: absent, rev, digest, data_digest)
//	s/<p>/<tenant>/<vendor>/<stream>               → the snapshot (directory walk) in progress
//	n/<p>/<tenant>/<vendor>/<stream>/<snap>/<key>  → an object seen by that walk
//	c/<p>                                  → checkpoint {raw, events offsets}
//
// A Store is used by one goroutine at a time.
type Store struct {
	db *pebble.DB
}

// OpenStore opens (or creates) the store in dir; Pebble's own messages go
// to log (nil discards).
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log.With("component", "pebble")}})
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// pebbleLogger sends Pebble's messages to slog: its info lines are routine
// (WAL replay, compactions), so they go to debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }

// Fatalf is called on corruption Pebble cannot go on from.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic("pebble: " + msg)
}

// Size returns the disk space the store uses, in bytes.
func (s *Store) Size() uint64 { return s.db.Metrics().DiskSpaceUsage() }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) get(k string) ([]byte, bool, error) {
	v, c, err := s.db.Get([]byte(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state get: %w", err)
	}
	defer c.Close()
	return slices.Clone(v), true, nil
}

// Pending data keys ([datakey.Keys.OnMake]) are kept apart from the
// batches' state: one is written as it is made, before anything is sealed
// under it, and deleted once its transaction committed.

func pendingKeyKey(tenant string) string { return "k/" + tenant }

func (s *Store) keepPendingKey(k datakey.Key) error {
	v, err := json.Marshal(k)
	if err == nil {
		err = s.db.Set([]byte(pendingKeyKey(k.Tenant)), v, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("state: keep data key: %w", err)
	}
	return nil
}

func (s *Store) dropPendingKey(tenant string) error {
	if err := s.db.Delete([]byte(pendingKeyKey(tenant)), pebble.Sync); err != nil {
		return fmt.Errorf("state: drop data key: %w", err)
	}
	return nil
}

func (s *Store) pendingKeys() ([]datakey.Key, error) {
	names, err := s.keys(pendingKeyKey(""))
	if err != nil {
		return nil, err
	}
	var out []datakey.Key
	for _, n := range names {
		v, _, err := s.get(n)
		if err != nil {
			return nil, err
		}
		var k datakey.Key
		if err := json.Unmarshal(v, &k); err != nil {
			return nil, fmt.Errorf("state: data key %s: %w", n, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// keys returns the keys under prefix, in order.
func (s *Store) keys(prefix string) ([]string, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: []byte(prefix + "\xff")})
	if err != nil {
		return nil, fmt.Errorf("state scan: %w", err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Key()))
	}
	return out, it.Error()
}

// Head is a tenant's chain head.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Entry is the dedupe state of one key: the content digest and revision of
// its latest event, and that event's data digest.
type Entry struct {
	Digest     string `json:"digest"`
	Rev        uint32 `json:"rev"`
	DataDigest string `json:"data_digest"`
	Absent     bool   `json:"absent,omitempty"`
}

// entrySize is the binary form: flags, rev, digest, data digest.
const entrySize = 1 + 4 + 32 + 32

func (e Entry) marshal() []byte {
	b := make([]byte, entrySize)
	if e.Absent {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[1:], e.Rev)
	hex.Decode(b[5:37], []byte(e.Digest))
	hex.Decode(b[37:], []byte(e.DataDigest))
	return b
}

func unmarshalEntry(b []byte) (Entry, error) {
	if len(b) != entrySize {
		return Entry{}, fmt.Errorf("dedupe entry of %d bytes, want %d", len(b), entrySize)
	}
	return Entry{Absent: b[0]&1 != 0, Rev: binary.BigEndian.Uint32(b[1:]),
		Digest: hex.EncodeToString(b[5:37]), DataDigest: hex.EncodeToString(b[37:])}, nil
}

func (o *overlay) getEntry(k string) (Entry, bool, error) {
	b, ok, err := o.get(k)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e, err := unmarshalEntry(b)
	return e, err == nil, err
}

func (o *overlay) setEntry(k string, e Entry) { o.set(k, e.marshal()) }

// committed is a key's value in the store, read ahead of a batch's use of
// it: the store changes only when a batch commits.
type committed struct {
	v     []byte
	found bool
	err   error
}

// getEntryAhead is getEntry for a key whose committed value was read
// ahead.
func (o *overlay) getEntryAhead(k string, c committed) (Entry, bool, error) {
	b, ok, changed := o.changed(k)
	if !changed {
		b, ok = c.v, c.found
		if c.err != nil {
			return Entry{}, false, c.err
		}
	}
	if !ok {
		return Entry{}, false, nil
	}
	e, err := unmarshalEntry(b)
	return e, err == nil, err
}

// Checkpoint is how far the store has applied: the last raw offset
// processed and the last ogma.events and ogma.deadletter offsets
// reflected (-1: none).
type Checkpoint struct {
	Raw        int64 `json:"raw"`
	Events     int64 `json:"events"`
	Deadletter int64 `json:"deadletter"`
}

func pfx(p int32) string { return strconv.Itoa(int(p)) + "/" }

func headKey(p int32, tenant string) string { return "h/" + pfx(p) + tenant }

// dedupeKey keeps directory keys readable — the end of a walk scans them
// to find what is absent — and stores every other key as its SHA-256,
// which is all a lookup needs and a fraction of a usage key's size.
func dedupeKey(p int32, tenant, vendor, stream string, key []byte) string {
	if normalize.IsDirectory(vendor, stream) {
		return dedupePrefix(p, tenant, vendor, stream) + string(key)
	}
	h := sha256.Sum256(key)
	// One allocation: this runs for every record.
	b := make([]byte, 0, 16+len(tenant)+len(vendor)+len(stream)+len(h))
	b = strconv.AppendInt(append(b, "d/"...), int64(p), 10)
	b = append(append(append(append(append(append(append(b, '/'), tenant...), '/'), vendor...), '/'), stream...), '/')
	return string(append(b, h[:]...))
}

// scope names one stream of one tenant: two vendors may name a stream
// alike (users), and their objects must not meet.
func scope(p int32, tenant, vendor, name string) string {
	return pfx(p) + stream.ID{Tenant: tenant, Vendor: vendor, Stream: name}.Key()
}

func dedupePrefix(p int32, tenant, vendor, stream string) string {
	return "d/" + scope(p, tenant, vendor, stream) + "/"
}
func snapKey(p int32, tenant, vendor, stream string) string {
	return "s/" + scope(p, tenant, vendor, stream)
}
func seenPrefix(p int32, tenant, vendor, stream, snap string) string {
	return "n/" + scope(p, tenant, vendor, stream) + "/" + snap + "/"
}
func checkpointKey(p int32) string { return "c/" + strconv.Itoa(int(p)) }

// overlay is a batch's changes on top of the store: reads see them first;
// they reach Pebble only once the batch's transaction committed.
type overlay struct {
	s       *Store
	writes  map[string][]byte // nil value: deleted
	dropped []string          // prefixes deleted (snapshots closed)
}

func newOverlay(s *Store) *overlay { return &overlay{s: s, writes: map[string][]byte{}} }

func (o *overlay) get(k string) ([]byte, bool, error) {
	if v, ok, changed := o.changed(k); changed {
		return v, ok, nil
	}
	return o.s.get(k)
}

// changed reports whether the overlay changed k, and if so its value.
func (o *overlay) changed(k string) (v []byte, ok, changed bool) {
	if v, ok := o.writes[k]; ok {
		return v, v != nil, true
	}
	for _, p := range o.dropped {
		if strings.HasPrefix(k, p) {
			return nil, false, true
		}
	}
	return nil, false, false
}

func (o *overlay) set(k string, v []byte) { o.writes[k] = v }
func (o *overlay) del(k string)           { o.writes[k] = nil }

// dropPrefix deletes every key under p. Nothing may be written under p
// afterwards in the same overlay.
func (o *overlay) dropPrefix(p string) {
	for k := range o.writes {
		if strings.HasPrefix(k, p) {
			delete(o.writes, k)
		}
	}
	o.dropped = append(o.dropped, p)
}

// keys returns the keys under prefix as the overlay sees them, in order.
func (o *overlay) keys(prefix string) ([]string, error) {
	base, err := o.s.keys(prefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range base {
		if _, ok, _ := o.get(k); ok {
			out = append(out, k)
			seen[k] = true
		}
	}
	for k, v := range o.writes {
		if v != nil && strings.HasPrefix(k, prefix) && !seen[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (o *overlay) getJSON(k string, v any) (bool, error) {
	b, ok, err := o.get(k)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state %q: %w", k, err)
	}
	return true, nil
}

func (o *overlay) setJSON(k string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("process: marshal state: %v", err)) // plain structs
	}
	o.set(k, b)
}

// commit writes the overlay to Pebble in one synced batch.
func (o *overlay) commit() error {
	b := o.s.db.NewBatch()
	defer b.Close()
	keys := make([]string, 0, len(o.writes))
	for k := range o.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if v := o.writes[k]; v == nil {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), v, nil)
		}
		if err != nil {
			return fmt.Errorf("state batch: %w", err)
		}
	}
	for _, p := range o.dropped {
		if err := b.DeleteRange([]byte(p), []byte(p+"\xff"), nil); err != nil {
			return fmt.Errorf("state batch: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state commit: %w", err)
	}
	return nil
}
