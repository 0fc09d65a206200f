package process

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

var fetched = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// testKeys hold a data key for each tenant of these tests, committed, as a
// processor holds them after each tenant's first batch: the transform's
// input like its store, the same for every run.
var testKeys = committedKeys("acme", "globex")

func committedKeys(tenants ...string) *datakey.Keys {
	k := datakey.New(nil, topic.Layout{Partitions: 1})
	for _, t := range tenants {
		if _, _, err := k.Key(t, fetched); err != nil {
			panic(err)
		}
	}
	k.Commit(tenants...)
	return k
}

// walk returns the raw records of one complete directory walk of users.
func walk(snap string, users ...string) []*kgo.Record {
	var recs []*kgo.Record
	add := func(marker string, data string, count int) {
		r := &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "users", FetchedAt: fetched,
			Salt: strings.Repeat("ab", 32), Snapshot: &envelope.Snapshot{ID: snap, Marker: marker, Count: count}}
		if data != "" {
			r.Data = json.RawMessage(data)
		}
		recs = append(recs, &kgo.Record{Value: r.Marshal()})
	}
	add(envelope.Begin, "", 0)
	for _, u := range users {
		add(envelope.Item, u, 0)
	}
	add(envelope.End, "", len(users))
	return recs
}

// runBatch transforms recs as one committed batch and returns the events.
func runBatch(t *testing.T, s *Store, recs []*kgo.Record) []*event.Record {
	t.Helper()
	tr := newTransform(s, 0, topic.Layout{Partitions: 1}, testKeys)
	if err := tr.run(recs, -1, true); err != nil {
		t.Fatal(err)
	}
	if err := tr.ov.commit(); err != nil {
		t.Fatal(err)
	}
	var out []*event.Record
	for _, r := range tr.out {
		if r.Topic == topic.Events {
			out = append(out, topictest.OpenEvent(t, testKeys, r.Value))
		}
	}
	return out
}

// DESIGN "Directory snapshots": an object missing from a complete walk
// becomes an absent revision; using a key (last_used_at) is not a change.
func TestDirectoryWalksMakeAbsentRevisions(t *testing.T) {
	s, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ada := `{"id":"user-1","email":"ada@example.com","api_key_last_used_at":1}`
	alan := `{"id":"user-2","email":"alan@example.com"}`

	evs := runBatch(t, s, walk("s1", ada, alan))
	if len(evs) != 2 || evs[0].Event.Kind != event.Identity || evs[0].Event.Rev != 0 {
		t.Fatalf("first walk made %d events, want 2 identity events at rev 0", len(evs))
	}

	// ada used a key (only *_last_used_at changed); alan is gone.
	evs = runBatch(t, s, walk("s2", strings.Replace(ada, `"api_key_last_used_at":1`, `"api_key_last_used_at":99`, 1)))
	if len(evs) != 1 {
		t.Fatalf("second walk made %d events, want only alan's absent revision", len(evs))
	}
	if e := evs[0]; string(e.Data) != "null" || e.Event.Rev != 1 || !strings.Contains(string(e.Event.Key), "user-2") || e.Event.Seq != 3 {
		t.Errorf("absent revision = %s rev %d seq %d, want user-2's null data at rev 1, seq 3", e.Event.Key, e.Event.Rev, e.Event.Seq)
	}

	// Still gone: nothing new. Back again: a new revision.
	if evs := runBatch(t, s, walk("s3", ada)); len(evs) != 0 {
		t.Errorf("a third walk without alan made %d events", len(evs))
	}
	evs = runBatch(t, s, walk("s4", ada, alan))
	if len(evs) != 1 || evs[0].Event.Rev != 2 {
		t.Fatalf("alan's return made %v, want one event at rev 2", evs)
	}

	// A walk seen only in part (its begin marker missing) proves nothing.
	part := walk("s5", ada)[1:]
	if evs := runBatch(t, s, part); len(evs) != 0 {
		t.Errorf("a walk without its begin made %d events", len(evs))
	}
}

// The transform is pure: the same state and input give the same bytes.
func TestTransformIsDeterministic(t *testing.T) {
	var outs [][]*kgo.Record
	for range 2 {
		s, err := OpenStore(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := newTransform(s, 0, topic.Layout{Partitions: 1}, testKeys)
		if err := tr.run(walk("s1", `{"id":"user-1"}`, `{"id":"user-2"}`), -1, true); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, tr.out)
		s.Close()
	}
	if len(outs[0]) != len(outs[1]) {
		t.Fatal("different record counts")
	}
	for i := range outs[0] {
		if string(outs[0][i].Value) != string(outs[1][i].Value) || string(outs[0][i].Key) != string(outs[1][i].Key) {
			t.Fatalf("record %d differs between two runs", i)
		}
	}
}

// bucketRows returns the raw records of one settled completions bucket of
// tenant with n rows.
func bucketRows(tenant string, start time.Time, n int) []*kgo.Record {
	var recs []*kgo.Record
	for i := range n {
		r := &envelope.Raw{V: 1, Tenant: tenant, Vendor: "openai", Stream: "usage.completions", FetchedAt: fetched,
			Salt: strings.Repeat("cd", 32), GroupSet: []string{"model"},
			Bucket: &envelope.Bucket{Start: start.Unix(), End: start.Add(24 * time.Hour).Unix(), Width: "1d", Rows: n, Row: i},
			Data:   json.RawMessage(`{"model":"m` + string(rune('a'+i)) + `","input_tokens":1}`)}
		recs = append(recs, &kgo.Record{Value: r.Marshal(), Offset: int64(i)})
	}
	return recs
}

// Two producers' records interleave in a partition (a connector's bucket,
// another tenant's bucket, a link): every bucket still completes, while a
// bucket of the same stream cut short by the next is deadlettered.
func TestInterleavedBucketsComplete(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a, b := bucketRows("acme", day, 3), bucketRows("globex", day, 2)
	cut := bucketRows("acme", day.Add(24*time.Hour), 3)
	tests := []struct {
		name        string
		recs        []*kgo.Record
		facts, dead int
	}{
		{"two tenants interleaved", []*kgo.Record{a[0], b[0], a[1], b[1], a[2]}, 5, 0},
		{"a stream's bucket cut short by its next", []*kgo.Record{a[0], a[1], cut[0], cut[1], cut[2]}, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenStore(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i, r := range tt.recs {
				r.Offset = int64(i)
			}
			tr := newTransform(s, 0, topic.Layout{Partitions: 2}, testKeys)
			if err := tr.run(tt.recs, -1, true); err != nil {
				t.Fatal(err)
			}
			facts := 0
			for _, r := range tr.out {
				if r.Topic == topic.Events && strings.Contains(string(r.Value), `"kind":"fact"`) {
					facts++
				}
			}
			if facts != tt.facts || tr.counts[outcomeDeadletter] != tt.dead {
				t.Errorf("%d facts, %d deadlettered; want %d and %d", facts, tr.counts[outcomeDeadletter], tt.facts, tt.dead)
			}
		})
	}
}

// A transform fed its input in two calls, split anywhere, makes the bytes of
// one fed it whole: the processor hands it each poll's records as they come
// (a bucket may span polls) and never transforms a record twice.
func TestTransformIncrementalIsWhole(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a, b := bucketRows("acme", day, 3), bucketRows("globex", day, 2)
	cut := bucketRows("acme", day.Add(24*time.Hour), 3)
	open := bucketRows("acme", day.Add(48*time.Hour), 2)
	recs := []*kgo.Record{a[0], b[0], a[1], b[1], a[2], {Value: []byte("not an envelope")}, cut[0], cut[1]}
	recs = append(recs, walk("s1", `{"id":"user-1"}`, `{"id":"user-2"}`)...)
	recs = append(recs, open[0]) // cut short by the end of the batch
	for i, r := range recs {
		r.Offset = int64(i)
	}
	transform := func(parts ...[]*kgo.Record) []*kgo.Record {
		s, err := OpenStore(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tr := newTransform(s, 0, topic.Layout{Partitions: 1}, testKeys)
		for i, p := range parts {
			if err := tr.run(p, -1, i == len(parts)-1); err != nil {
				t.Fatal(err)
			}
		}
		return tr.out
	}
	whole := transform(recs)
	if len(whole) == 0 {
		t.Fatal("the whole input made no output")
	}
	for i := range recs {
		got := transform(recs[:i], recs[i:])
		if len(got) != len(whole) {
			t.Fatalf("split at %d: %d records, want %d", i, len(got), len(whole))
		}
		for j := range whole {
			if got[j].Topic != whole[j].Topic || string(got[j].Key) != string(whole[j].Key) || string(got[j].Value) != string(whole[j].Value) {
				t.Fatalf("split at %d: record %d is %s %q, want %s %q", i, j, got[j].Topic, got[j].Value, whole[j].Topic, whole[j].Value)
			}
		}
	}
}

// A raw record whose event would be too large for any broker is
// deadlettered in its place — its start kept, its size named — and the
// chain goes on without a gap: one tenant cannot stall the partition.
func TestOversizedOutputIsDeadlettered(t *testing.T) {
	s, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := bucketRows("acme", day, 3)
	huge := &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions", FetchedAt: fetched,
		Salt: strings.Repeat("cd", 32), GroupSet: []string{"model"},
		Bucket: &envelope.Bucket{Start: day.Unix(), End: day.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 3, Row: 1},
		Data:   json.RawMessage(`{"model":"mb","input_tokens":1,"note":"` + strings.Repeat("x", maxOutputBytes) + `"}`)}
	recs[1].Value = huge.Marshal()

	tr := newTransform(s, 0, topic.Layout{Partitions: 1}, testKeys)
	if err := tr.run(recs, -1, true); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	var dead []envelope.Deadletter
	for _, r := range tr.out {
		if len(r.Key)+len(r.Value) > maxOutputBytes {
			t.Errorf("an output record of %d bytes", len(r.Key)+len(r.Value))
		}
		switch r.Topic {
		case topic.Events:
			e, err := event.DecodeRecord(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, e.Event.Seq)
		case topic.Deadletter:
			var d envelope.Deadletter
			json.Unmarshal(r.Value, &d)
			dead = append(dead, d)
		}
	}
	if len(dead) != 1 || dead[0].Source.Offset != 1 || !strings.Contains(dead[0].Reason, "more than the") || dead[0].RawBytes != len(recs[1].Value) {
		t.Errorf("deadletters = %+v, want row 1's, naming its size", dead)
	}
	if fmt.Sprint(seqs) != "[1 2 3]" { // rows 0 and 2, then the manifest
		t.Errorf("event seqs = %v, want 1 2 3 without a gap", seqs)
	}
}

// An open bucket too large for one record is served in part, saying how
// many rows it leaves out, rather than as a record the broker refuses.
func TestLargeOpenBucketIsServedInPart(t *testing.T) {
	s, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := fetched.Truncate(24 * time.Hour) // today's bucket: open
	const n = 300
	var recs []*kgo.Record
	for i := range n {
		r := &envelope.Raw{V: 1, Tenant: "acme", Vendor: "openai", Stream: "usage.completions", FetchedAt: fetched,
			Salt: strings.Repeat("cd", 32), GroupSet: []string{"model"},
			Bucket: &envelope.Bucket{Start: start.Unix(), End: start.Add(24 * time.Hour).Unix(), Width: "1d", Rows: n, Row: i},
			Data:   json.RawMessage(fmt.Sprintf(`{"model":"m%d","input_tokens":1,"note":"%s"}`, i, strings.Repeat("x", 8<<10)))}
		recs = append(recs, &kgo.Record{Value: r.Marshal(), Offset: int64(i)})
	}
	tr := newTransform(s, 0, topic.Layout{Partitions: 1}, testKeys)
	if err := tr.run(recs, -1, true); err != nil {
		t.Fatal(err)
	}
	var prov []envelope.Provisional
	for _, r := range tr.out {
		if len(r.Key)+len(r.Value) > maxOutputBytes {
			t.Errorf("an output record of %d bytes", len(r.Key)+len(r.Value))
		}
		if r.Topic == topic.Provisional {
			var p envelope.Provisional
			json.Unmarshal(r.Value, &p)
			prov = append(prov, p)
		}
	}
	if len(prov) != 1 || prov[0].RowsOmitted == 0 || len(prov[0].Rows)+prov[0].RowsOmitted != n {
		t.Fatalf("provisional records = %d, want one holding part of the %d rows and counting the rest", len(prov), n)
	}
}

// A tenant's key is published with its first event, whatever batch made
// it: a batch of open buckets only makes the key (the pre-pass seals every
// fact it drafts) but no event, and the key stays pending — published
// with the events of the next batch, never taken as committed unseen.
func TestKeyIsPublishedWithTheFirstEvent(t *testing.T) {
	s, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := datakey.New(nil, topic.Layout{Partitions: 1})
	batch := func(recs []*kgo.Record) (events, published int) {
		tr := newTransform(s, 0, topic.Layout{Partitions: 1}, keys)
		if err := tr.run(recs, -1, true); err != nil {
			t.Fatal(err)
		}
		if err := tr.ov.commit(); err != nil {
			t.Fatal(err)
		}
		keys.Commit(tr.published...)
		for _, r := range tr.out {
			switch r.Topic {
			case topic.Events:
				events++
			case topic.Keys:
				published++
			}
		}
		return events, published
	}
	today := fetched.Truncate(24 * time.Hour) // its bucket is open
	if events, published := batch(bucketRows("initech", today, 2)); events != 0 || published != 0 {
		t.Fatalf("a batch of open buckets made %d events and published %d keys, want none", events, published)
	}
	if _, pending, _ := keys.Key("initech", fetched); pending == nil {
		t.Fatal("a key no batch published is taken as committed")
	}
	events, published := batch(bucketRows("initech", today.AddDate(0, 0, -2), 2))
	if events == 0 || published != 1 {
		t.Fatalf("the first events came with %d published keys, want 1", published)
	}
	if _, pending, _ := keys.Key("initech", fetched); pending != nil {
		t.Error("the key is still pending after the batch that published it committed")
	}
}
