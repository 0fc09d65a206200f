package process

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Raw records are outside input: whatever a record holds, the transform
// neither panics nor fails the batch; a record it cannot read goes to the
// deadletter with its exact bytes, and every event it makes is canonical.
func FuzzTransform(f *testing.F) {
	for _, r := range walk("s1", `{"id":"user-1","email":"a@b"}`) {
		f.Add(r.Value)
	}
	f.Add(bucketRows("acme", fetched.AddDate(0, 0, -3), 1)[0].Value)
	f.Add([]byte(`{"v":1,"tenant":"t","vendor":"ogma","stream":"links","fetched_at":"2026-11-27T00:00:00Z","salt":"` +
		strings.Repeat("ab", 32) + `","data":{"subject_vendor":"openai","subject_kind":"user","subject_id":"u","email":"a@b.c","linked_by":"x","linked_at":"2026-11-27T00:00:00Z"}}`))
	f.Add([]byte("not json"))
	// One store per fuzzing process for every input (opening one per
	// input is too slow to fuzz): the transform only reads it, as nothing
	// is committed.
	var s *Store
	var dir string
	f.Cleanup(func() {
		if s != nil {
			s.Close()
			os.RemoveAll(dir)
		}
	})
	f.Fuzz(func(t *testing.T, value []byte) {
		if s == nil {
			var err error
			if dir, err = os.MkdirTemp("", "fuzz-transform-"); err != nil {
				t.Fatal(err)
			}
			if s, err = OpenStore(dir, nil); err != nil {
				t.Fatal(err)
			}
		}
		tr := newTransform(s, 0, topic.Layout{Partitions: 1}, datakey.New(nil, topic.Layout{Partitions: 1}))
		if err := tr.run([]*kgo.Record{{Value: value}}, -1, true); err != nil {
			t.Fatalf("the batch failed: %v", err)
		}
		_, decodeErr := envelope.Decode(value)
		dead := 0
		for _, r := range tr.out {
			switch r.Topic {
			case topic.Deadletter:
				dead++
				var d struct{ Raw string }
				if err := json.Unmarshal(r.Value, &d); err != nil || d.Raw != base64.StdEncoding.EncodeToString(value) {
					t.Fatalf("deadletter does not carry the record's bytes: %s", r.Value)
				}
			case topic.Events:
				rec, err := event.DecodeRecord(r.Value)
				if err != nil {
					t.Fatalf("an event that does not decode: %v", err)
				}
				if again, err := event.Canonicalize([]byte(rec.Canonical)); err != nil || string(again) != rec.Canonical {
					t.Fatalf("an event that is not canonical: %s", rec.Canonical)
				}
			}
		}
		if decodeErr != nil && dead != 1 {
			t.Fatalf("an undecodable record made %d deadletters, want 1", dead)
		}
	})
}
