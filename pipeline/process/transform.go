package process

import (
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/settle"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Outcomes of a raw record, for metrics.
const (
	outcomeEmitted     = "emitted"
	outcomeDeduped     = "deduped"
	outcomeProvisional = "provisional"
	outcomeDeadletter  = "deadlettered"
	outcomeSkipped     = "skipped"
	outcomeErased      = "erased"
)

// transform turns the raw records of one partition, in offset order, into
// output records and the state changes they imply. It is pure: it reads
// the state store, never the clock or the network, and iterates nothing in
// map order, so the same state and input give byte-identical output.
type transform struct {
	p      int32
	layout topic.Layout
	ov     *overlay
	out    []*kgo.Record
	counts map[string]int
	// lastRaw is the offset of the last raw record processed.
	lastRaw int64
	// open holds the buckets being read, by stream: a connector publishes
	// a bucket's rows in one transaction, but other producers' records
	// (another stream's, a link) may land between them, and a poll may end
	// inside one.
	open map[string][]row
	// heads are the chain heads of the tenants seen, written to the
	// overlay at the end of each run instead of at every event.
	heads map[string]Head
	// from holds, for each record of out, the raw offset it was made from
	// (-1: none alone).
	from []int64
	// ship, if set, takes the output as it is made, with from, so that it
	// is produced while the rest is transformed; out[:shipped] was shipped.
	ship    func(out []*kgo.Record, from []int64)
	shipped int
	// refused holds raw offsets whose output Kafka refused in an earlier
	// try of this batch: each is deadlettered instead.
	refused map[int64]refusal
	// keys are the tenants' data keys, which seal each event's data and
	// salt; they are an input, as the store is. sealers holds each key
	// this transform used (published if it was pending), erased whether
	// each tenant seen was erased: an erasure takes effect from the next
	// batch on.
	keys    dataKeys
	sealers map[string]cipher.AEAD
	erased  map[string]bool
	// published lists the tenants whose pending key this transform
	// published: committed with the batch.
	published []string
}

// dataKeys are the tenants' data keys, as [datakey.Keys] holds them.
type dataKeys interface {
	Get(tenant string) (cipher.AEAD, error)
	Key(tenant string, now time.Time) (aead cipher.AEAD, pending *kgo.Record, err error)
}

// refusal is why Kafka refused a raw record's output; bare is set once it
// refused even the deadletter, which then leaves the record's bytes out.
type refusal struct {
	reason string
	bare   bool
}

// maxOutputBytes bounds an output record's key and value, under the
// broker's 1 MiB default: a record over the limit fails its whole
// transaction, again on every retry, and stalls every tenant of the
// partition.
const maxOutputBytes = 900 << 10

// add appends an output record made from raw offset from.
func (t *transform) add(r *kgo.Record, from int64) {
	t.out = append(t.out, r)
	t.from = append(t.from, from)
}

func newTransform(s *Store, p int32, l topic.Layout, keys dataKeys) *transform {
	return &transform{p: p, layout: l, keys: keys, sealers: map[string]cipher.AEAD{}, erased: map[string]bool{}, ov: newOverlay(s), counts: map[string]int{}, lastRaw: -1,
		open: map[string][]row{}, heads: map[string]Head{}}
}

// row is a bucket's row being held until the bucket is complete.
type row struct {
	*decoded // in its prepass's results, which it keeps
	src      event.Source
	value    []byte // the record as read, for the deadletter
}

// run processes recs, which follow those of earlier calls; skipThrough is
// the last raw offset already turned into events. Each record is
// transformed once, whatever the calls it comes in: the output equals one
// call over all of them. A bucket whose rows are not all in yet is held
// (see incomplete); with flush, such a bucket's rows are deadlettered.
func (t *transform) run(recs []*kgo.Record, skipThrough int64, flush bool) error {
	defer func() {
		for tenant, h := range t.heads {
			t.ov.setJSON(headKey(t.p, tenant), h)
		}
	}()
	open := t.open
	pre := startPrepass(t.ov.s, t.keys, recs, skipThrough)
	defer pre.stop()
	defer t.shipOut()
	for i, r := range recs {
		if i%prepassChunk == 0 {
			t.shipOut()
		}
		if r.Offset <= skipThrough {
			t.counts[outcomeSkipped]++
			continue
		}
		t.lastRaw = r.Offset
		src := event.Source{Partition: r.Partition, Offset: r.Offset}
		d := pre.get(i)
		raw := d.raw
		if d.err != nil {
			t.deadletter(r, d.err.Error())
			continue
		}
		if t.isErased(raw.Tenant) {
			t.counts[outcomeErased]++ // an erased tenant's data is not processed again
			continue
		}
		switch {
		case raw.Bucket != nil:
			stream := raw.ID().Key()
			bucket := open[stream]
			if len(bucket) > 0 && !sameBucket(bucket[0].raw, raw) {
				// The stream's previous bucket ended early: its rows are not all here.
				for _, b := range bucket {
					t.deadletterRaw(b, "bucket cut short: another bucket of its stream started before its last row")
				}
				bucket = nil
			}
			if bucket == nil {
				bucket = make([]row, 0, min(max(raw.Bucket.Rows, 1), 1024)) // the vendor's count, within reason
			}
			bucket = append(bucket, row{decoded: d, src: src, value: r.Value})
			if raw.Bucket.Rows == 0 || raw.Bucket.Row == raw.Bucket.Rows-1 {
				delete(open, stream)
				if err := t.bucket(bucket); err != nil {
					return err
				}
				continue
			}
			open[stream] = bucket
		case raw.Snapshot != nil:
			if err := t.snapshot(d, src, r); err != nil {
				return err
			}
		case normalize.IsLog(raw.Vendor, raw.Stream), normalize.IsLink(raw.Vendor, raw.Stream):
			f, err := d.fact, d.nerr
			if err != nil {
				t.deadletter(r, err.Error())
				continue
			}
			_, outcome, err := t.fact(raw, f, raw.Salt, src, d.prepared, r.Value)
			if err != nil {
				return err
			}
			t.count(outcome)
		default:
			t.deadletter(r, "envelope has neither a bucket nor a snapshot, and its stream is neither a log nor links")
		}
	}
	if flush {
		for _, stream := range slices.Sorted(maps.Keys(open)) {
			for _, b := range open[stream] {
				t.deadletterRaw(b, "bucket cut short: the batch ended before its last row")
			}
		}
		clear(open)
	}
	return nil
}

// shipOut hands the output made since the last call to ship.
func (t *transform) shipOut() {
	if t.ship != nil && t.shipped < len(t.out) {
		t.ship(t.out[t.shipped:], t.from[t.shipped:])
		t.shipped = len(t.out)
	}
}

// incomplete reports whether the input so far ends inside a bucket whose
// other rows have not been read yet.
func (t *transform) incomplete() bool { return len(t.open) > 0 }

// missing returns the fewest rows any open bucket still misses, so that
// reading that many records completes at most one bucket and opens none of
// its stream.
func (t *transform) missing() int {
	n := 0
	for _, rows := range t.open {
		if m := rows[0].raw.Bucket.Rows - len(rows); m > 0 && (n == 0 || m < n) {
			n = m
		}
	}
	return max(n, 1)
}

func sameBucket(a, b *envelope.Raw) bool {
	return a.Tenant == b.Tenant && a.Stream == b.Stream && a.Bucket.Start == b.Bucket.Start &&
		a.Bucket.Rows == b.Bucket.Rows && a.FetchedAt.Equal(b.FetchedAt) && b.Bucket.Row > 0
}

// bucket handles one complete bucket as the vendor returned it.
func (t *transform) bucket(rows []row) error {
	first := rows[0].raw
	b := first.Bucket
	last := rows[len(rows)-1].src
	if b.Rows != 0 && len(rows) != b.Rows {
		for _, r := range rows {
			t.deadletterRaw(r, fmt.Sprintf("bucket has %d of its %d rows", len(rows), b.Rows))
		}
		return nil
	}
	end := time.Unix(b.End, 0)
	spec, _ := stream.Lookup(first.Vendor, first.Stream) // a report: normalize knows it
	if !settle.Settled(end, first.FetchedAt, spec.Grace) {
		t.provisional(rows)
		for range rows {
			t.counts[outcomeProvisional]++
		}
		return nil
	}

	type entry struct {
		key        []byte
		dataDigest string
	}
	var entries []entry
	for _, r := range rows {
		if r.raw.Data == nil {
			continue // the record of an empty bucket
		}
		f, err := r.fact, r.nerr
		if err != nil {
			t.deadletterRaw(r, err.Error())
			continue
		}
		dd, outcome, err := t.fact(r.raw, f, r.raw.Salt, r.src, r.prepared, r.value)
		if err != nil {
			return err
		}
		t.count(outcome)
		if outcome != outcomeDeadletter {
			entries = append(entries, entry{f.Key, dd})
		}
	}
	if b.Rows == 0 {
		t.counts[outcomeDeduped]++
	}

	// The manifest: how many rows the vendor returned, and a digest over
	// their keys and data digests, in key order.
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	h := sha256.New()
	line := make([]byte, 0, 512)
	for _, e := range entries {
		line = append(append(append(append(line[:0], e.key...), '\n'), e.dataDigest...), '\n')
		h.Write(line)
	}
	mdata, err := json.Marshal(map[string]any{
		"bucket_end": event.Time(end),
		"rows":       b.Rows,
		"digest":     hex.EncodeToString(h.Sum(nil)),
	})
	if err != nil {
		return err
	}
	mdata, err = event.Canonicalize(mdata)
	if err != nil {
		return err
	}
	mkey, err := normalize.ManifestKey(spec, b, first.GroupSet)
	if err != nil {
		return err
	}
	salts := sha256.New()
	for _, r := range rows {
		s, _ := hex.DecodeString(r.raw.Salt)
		salts.Write(s)
	}
	mf := normalize.Fact{Kind: event.Manifest, Key: mkey, Data: mdata, Digest: event.ContentDigest(mdata)}
	if _, _, err := t.fact(first, mf, hex.EncodeToString(salts.Sum(nil)), last, prepared{}, nil); err != nil {
		return err
	}
	// The bucket is settled: its provisional rows are gone.
	t.add(t.layout.Record(topic.Provisional, first.Tenant, envelope.ProvisionalKey(first.ID(), first.Bucket.Start), nil), last.Offset)
	return nil
}

// count counts a fact's outcome; a deadletter counted itself.
func (t *transform) count(outcome string) {
	if outcome != outcomeDeadletter {
		t.counts[outcome]++
	}
}

// prepared is what the pre-pass makes of a fact, off the chain step: its
// dedupe key, the key's entry as the store held it before the batch, its
// event drafted, and its data sealed under the tenant's key (sealedBy).
// Empty means not prepared.
type prepared struct {
	dedupeKey string
	entry     committed
	draft     *event.Draft
	sealed    []byte
	sealedBy  cipher.AEAD
}

// fact chains f unless its content is unchanged since its last event, and
// returns the data digest of the key's current event and the outcome.
// rawValue is the raw record f was made from, deadlettered in its place if
// its event cannot be produced; nil for events made from several records.
func (t *transform) fact(raw *envelope.Raw, f normalize.Fact, salt string, src event.Source, pre prepared, rawValue []byte) (string, string, error) {
	if ref, ok := t.refused[src.Offset]; ok && rawValue != nil {
		keep := maxDeadletterRaw
		if ref.bare {
			keep = 0
		}
		t.deadletterKeeping(&kgo.Record{Partition: src.Partition, Offset: src.Offset, Value: rawValue}, ref.reason, keep)
		return "", outcomeDeadletter, nil
	}
	dk := pre.dedupeKey
	var (
		ent Entry
		had bool
		err error
	)
	if dk == "" {
		dk = dedupeKey(t.p, raw.Tenant, raw.Vendor, raw.Stream, f.Key)
		ent, had, err = t.ov.getEntry(dk)
	} else {
		ent, had, err = t.ov.getEntryAhead(dk, pre.entry)
	}
	if err != nil {
		return "", "", err
	}
	if had && !ent.Absent && ent.Digest == f.Digest {
		return ent.DataDigest, outcomeDeduped, nil
	}
	rev := uint32(0)
	if had {
		rev = ent.Rev + 1
	}
	dd, err := t.emit(raw.Tenant, raw.Vendor, raw.Stream, f.Kind, f.Key, rev, raw.FetchedAt, f.Data, salt, pre, src)
	if errors.Is(err, datakey.ErrErased) {
		return "", outcomeErased, nil // erased since the batch began
	}
	var unproducible *unproducibleError
	if errors.As(err, &unproducible) && rawValue != nil {
		t.deadletter(&kgo.Record{Partition: src.Partition, Offset: src.Offset, Value: rawValue}, unproducible.reason)
		return "", outcomeDeadletter, nil
	}
	if err != nil {
		return "", "", err
	}
	t.ov.setEntry(dk, Entry{Digest: f.Digest, Rev: rev, DataDigest: dd, Absent: string(f.Data) == "null"})
	return dd, outcomeEmitted, nil
}

// emit appends the next event of tenant's chain — the pre-pass's draft and
// sealed data, if it made them — and returns its data digest.
func (t *transform) emit(tenant, vendor, stream, kind string, key []byte, rev uint32, observed time.Time, data []byte, salt string, pre prepared, src event.Source) (string, error) {
	head, ok := t.heads[tenant]
	if !ok {
		head = Head{Hash: event.Genesis}
		if _, err := t.ov.getJSON(headKey(t.p, tenant), &head); err != nil {
			return "", err
		}
	}
	aead, err := t.dataKey(tenant, observed)
	if err != nil {
		return "", err
	}
	seq := head.Seq + 1
	var value []byte
	var hash, dataDigest string
	drafted := false
	if draft := pre.draft; draft != nil {
		dataDigest = draft.DataDigest()
		sealed := pre.sealed
		if sealed == nil || pre.sealedBy != aead { // its key replaced since the pre-pass
			if sealed, err = event.SealData(aead, tenant, dataDigest, data, salt); err != nil {
				return "", err
			}
		}
		value, hash, drafted = draft.Seal(head.Hash, rev, seq, sealed, src)
	}
	if !drafted {
		rec, err := event.SealCanonicalKey(event.Event{Tenant: tenant, Seq: seq, Prev: head.Hash, Kind: kind,
			Vendor: vendor, Stream: stream, Key: key, Rev: rev, ObservedAt: event.Time(observed)}, data, salt, src)
		if err != nil {
			return "", err
		}
		if rec.Sealed, err = event.SealData(aead, tenant, rec.Event.DataDigest, data, salt); err != nil {
			return "", err
		}
		value, hash, dataDigest = rec.Marshal(), rec.Hash, rec.Event.DataDigest
	}
	rk := []byte(tenant + "/" + strconv.FormatUint(seq, 10))
	if len(rk)+len(value) > maxOutputBytes {
		return "", &unproducibleError{fmt.Sprintf("its event would be %d bytes, more than the %d a record may take", len(rk)+len(value), maxOutputBytes)}
	}
	t.heads[tenant] = Head{Seq: seq, Hash: hash}
	t.add(t.layout.Record(topic.Events, tenant, rk, value), src.Offset)
	return dataDigest, nil
}

// dataKey returns tenant's data key, made when it has none; a key not
// committed yet is published in this batch, beside the events it seals.
func (t *transform) dataKey(tenant string, now time.Time) (cipher.AEAD, error) {
	if aead, ok := t.sealers[tenant]; ok {
		return aead, nil
	}
	aead, pending, err := t.keys.Key(tenant, now)
	if err != nil {
		return nil, err
	}
	t.sealers[tenant] = aead
	if pending != nil {
		t.add(pending, -1)
		t.published = append(t.published, tenant)
	}
	return aead, nil
}

// isErased reports whether tenant was erased when the transform first
// looked.
func (t *transform) isErased(tenant string) bool {
	e, ok := t.erased[tenant]
	if !ok {
		_, err := t.keys.Get(tenant)
		e = errors.Is(err, datakey.ErrErased)
		t.erased[tenant] = e
	}
	return e
}

// unproducibleError is an event that cannot be produced; its raw record is
// deadlettered instead, and nothing of the event is kept.
type unproducibleError struct{ reason string }

func (e *unproducibleError) Error() string { return e.reason }

type snapState struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
}

// snapshot handles one marker or object of a directory walk.
func (t *transform) snapshot(d *decoded, src event.Source, r *kgo.Record) error {
	raw := d.raw
	sk := snapKey(t.p, raw.Tenant, raw.Vendor, raw.Stream)
	var cur snapState
	if _, err := t.ov.getJSON(sk, &cur); err != nil {
		return err
	}
	switch raw.Snapshot.Marker {
	case envelope.Begin:
		if cur.ID != "" {
			t.ov.dropPrefix(seenPrefix(t.p, raw.Tenant, raw.Vendor, raw.Stream, cur.ID))
		}
		t.ov.setJSON(sk, snapState{ID: raw.Snapshot.ID})
		t.counts[outcomeDeduped]++
	case envelope.Item:
		f, err := d.fact, d.nerr
		if err != nil {
			t.deadletter(r, err.Error())
			return nil
		}
		_, outcome, err := t.fact(raw, f, raw.Salt, src, d.prepared, r.Value)
		if err != nil {
			return err
		}
		t.count(outcome)
		if cur.ID == raw.Snapshot.ID {
			t.ov.set(seenPrefix(t.p, raw.Tenant, raw.Vendor, raw.Stream, cur.ID)+string(f.Key), []byte{})
			cur.Count++
			t.ov.setJSON(sk, cur)
		}
	case envelope.End:
		t.counts[outcomeDeduped]++
		// Absence is provable only from a walk seen whole, begin to end.
		if cur.ID != raw.Snapshot.ID || cur.Count != raw.Snapshot.Count {
			return nil
		}
		seen := seenPrefix(t.p, raw.Tenant, raw.Vendor, raw.Stream, cur.ID)
		prefix := dedupePrefix(t.p, raw.Tenant, raw.Vendor, raw.Stream)
		keys, err := t.ov.keys(prefix)
		if err != nil {
			return err
		}
		endSalt, _ := hex.DecodeString(raw.Salt)
		for _, dk := range keys {
			key := dk[len(prefix):]
			if _, ok, err := t.ov.get(seen + key); err != nil || ok {
				if err != nil {
					return err
				}
				continue
			}
			ent, _, err := t.ov.getEntry(dk)
			if err != nil {
				return err
			}
			if ent.Absent {
				continue
			}
			// An absent revision: data null, salt derived from the end
			// marker's so that replays are identical.
			s := sha256.New()
			s.Write(endSalt)
			s.Write([]byte(key))
			f := normalize.Fact{Kind: event.Identity, Key: []byte(key), Data: []byte("null"), Digest: event.ContentDigest([]byte("null"))}
			if _, _, err := t.fact(raw, f, hex.EncodeToString(s.Sum(nil)), src, prepared{}, nil); err != nil {
				return err
			}
		}
		t.ov.dropPrefix(seen)
		t.ov.del(sk)
	default:
		t.deadletter(r, fmt.Sprintf("unknown snapshot marker %q", raw.Snapshot.Marker))
	}
	return nil
}

func (t *transform) provisional(rows []row) {
	first := rows[0].raw
	p := envelope.Provisional{Tenant: first.Tenant, Vendor: first.Vendor, Stream: first.Stream, Bucket: *first.Bucket,
		GroupSet: first.GroupSet, FetchedAt: first.FetchedAt, Rows: []json.RawMessage{}}
	p.Bucket.Row = 0
	size := 4 << 10 // the record's key and everything but the rows, with room
	for _, r := range rows {
		if r.raw.Data == nil {
			continue
		}
		if size += len(r.raw.Data) + 1; size > maxOutputBytes {
			p.RowsOmitted++
			continue
		}
		p.Rows = append(p.Rows, r.raw.Data)
	}
	v, err := json.Marshal(p)
	for err == nil && len(v) > maxOutputBytes && len(p.Rows) > 0 {
		// Escaping grew the rows past the estimate: leave out more.
		keep := len(p.Rows) / 2
		p.RowsOmitted += len(p.Rows) - keep
		p.Rows = p.Rows[:keep]
		v, err = json.Marshal(p)
	}
	if err != nil {
		panic(fmt.Sprintf("process: marshal provisional: %v", err)) // raw data was valid JSON
	}
	t.add(t.layout.Record(topic.Provisional, first.Tenant, envelope.ProvisionalKey(first.ID(), first.Bucket.Start), v), rows[len(rows)-1].src.Offset)
}

// maxDeadletterRaw is how much of a raw record its deadletter keeps: the
// deadletter must fit where the record's output did not.
const maxDeadletterRaw = maxOutputBytes / 4

func (t *transform) deadletter(r *kgo.Record, reason string) {
	t.deadletterKeeping(r, reason, maxDeadletterRaw)
}

// deadletterKeeping deadletters r with at most keep bytes of it, naming
// its size when it keeps less.
func (t *transform) deadletterKeeping(r *kgo.Record, reason string, keep int) {
	t.counts[outcomeDeadletter]++
	d := envelope.Deadletter{Reason: reason, Source: event.Source{Partition: r.Partition, Offset: r.Offset}}
	raw := r.Value
	if len(raw) > keep {
		d.RawBytes, raw = len(raw), raw[:keep]
	}
	d.Raw = base64.StdEncoding.EncodeToString(raw)
	v, _ := json.Marshal(d)
	t.add(&kgo.Record{Topic: topic.Deadletter, Partition: t.p,
		Key: []byte(strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)), Value: v}, r.Offset)
}

func (t *transform) deadletterRaw(r row, reason string) {
	t.deadletter(&kgo.Record{Partition: r.src.Partition, Offset: r.src.Offset, Value: r.value}, reason)
}

// decoded is what the pure first steps make of a raw record: its envelope
// (or why it has none) and, for a record that carries an object, its fact
// (or why it has none).
type decoded struct {
	raw      *envelope.Raw
	err      error
	fact     normalize.Fact
	nerr     error
	prepared prepared
}

// prepass decodes and normalizes records on every core, ahead of the chain
// step, which must run in offset order: in chunks taken in offset order, so
// that the chain step starts on the first chunk while the next ones are
// decoded. Both steps are pure, so the output is the same bytes however the
// work is spread.
type prepass struct {
	s       *Store
	keys    dataKeys
	out     []decoded
	done    []chan struct{} // closed when its chunk is decoded
	ready   int             // out[:ready] may be read
	next    atomic.Int64    // the next chunk to take
	workers sync.WaitGroup
}

// prepassChunk is the number of records a worker takes at once.
const prepassChunk = 256

func startPrepass(s *Store, keys dataKeys, recs []*kgo.Record, skipThrough int64) *prepass {
	p := &prepass{s: s, keys: keys, out: make([]decoded, len(recs))}
	chunks := (len(recs) + prepassChunk - 1) / prepassChunk
	workers := min(runtime.GOMAXPROCS(0), chunks-1)
	if workers < 1 {
		p.decode(recs, skipThrough, 0, len(recs))
		p.ready = len(recs)
		return p
	}
	p.done = make([]chan struct{}, chunks)
	for c := range p.done {
		p.done[c] = make(chan struct{})
	}
	for range workers {
		p.workers.Go(func() {
			for {
				c := int(p.next.Add(1) - 1)
				if c >= chunks {
					return
				}
				p.decode(recs, skipThrough, c*prepassChunk, min((c+1)*prepassChunk, len(recs)))
				close(p.done[c])
			}
		})
	}
	return p
}

func (p *prepass) decode(recs []*kgo.Record, skipThrough int64, lo, hi int) {
	var dec envelope.Decoder
	for i := lo; i < hi; i++ {
		if recs[i].Offset > skipThrough {
			p.out[i] = decode(&dec, p.s, p.keys, recs[i])
		}
	}
}

// get returns record i's result, waiting for its chunk.
func (p *prepass) get(i int) *decoded {
	if i >= p.ready {
		c := i / prepassChunk
		<-p.done[c]
		p.ready = min((c+1)*prepassChunk, len(p.out))
	}
	return &p.out[i]
}

// stop makes the workers take no further chunk, for a chain step that
// ended early, and waits for the chunks they hold: none reads the store
// after the transform is done with it.
func (p *prepass) stop() {
	p.next.Store(int64(len(p.done)))
	p.workers.Wait()
}

func decode(dec *envelope.Decoder, s *Store, keys dataKeys, r *kgo.Record) decoded {
	raw, err := dec.Decode(r.Value)
	if err != nil {
		return decoded{err: err}
	}
	d := decoded{raw: raw}
	switch {
	case raw.Bucket != nil:
		if raw.Data == nil {
			return d // an empty bucket's record
		}
	case raw.Snapshot != nil:
		if raw.Snapshot.Marker != envelope.Item {
			return d
		}
	case !normalize.IsLog(raw.Vendor, raw.Stream) && !normalize.IsLink(raw.Vendor, raw.Stream):
		return d
	}
	d.fact, d.nerr = normalize.Normalize(raw)
	if d.nerr == nil {
		pre := &d.prepared
		pre.dedupeKey = dedupeKey(r.Partition, raw.Tenant, raw.Vendor, raw.Stream, d.fact.Key)
		pre.entry.v, pre.entry.found, pre.entry.err = s.get(pre.dedupeKey)
		if dd, err := event.DataDigest(raw.Salt, d.fact.Data); err == nil {
			pre.draft, _ = event.NewDraft(event.Event{Tenant: raw.Tenant, Kind: d.fact.Kind, Vendor: raw.Vendor, Stream: raw.Stream,
				Key: d.fact.Key, ObservedAt: event.Time(raw.FetchedAt), DataDigest: dd})
			// The key made here when the tenant has none: the chain step
			// publishes it with the tenant's first event.
			aead, err := keys.Get(raw.Tenant)
			if errors.Is(err, datakey.ErrNoKey) {
				aead, _, err = keys.Key(raw.Tenant, raw.FetchedAt)
			}
			if err == nil && pre.draft != nil {
				pre.sealed, _ = event.SealData(aead, raw.Tenant, dd, d.fact.Data, raw.Salt)
				pre.sealedBy = aead
			}
		}
	}
	return d
}
