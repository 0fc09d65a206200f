package event_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ogma-dev/ogma/pipeline/event"
)

// vector is the README's test vector: an event's fields, its data and
// salt, and what they must give.
type vector struct {
	Event      event.Event `json:"event"`
	Data       string      `json:"data"` // the exact bytes: JCS of the vendor object
	Salt       string      `json:"salt"`
	DataDigest string      `json:"data_digest"`
	Canonical  string      `json:"canonical"`
	Hash       string      `json:"hash"`
}

const vectorFile = "testdata/vector.json"

func sample() vector {
	return vector{
		Event: event.Event{Tenant: "acme", Seq: 1, Prev: event.Genesis, Kind: event.Fact, Vendor: "openai",
			Stream: "usage.completions", Rev: 0, ObservedAt: "2026-11-27T12:00:00Z",
			Key: json.RawMessage(`{"api_key_id":"key_abc","batch":"false","bucket_start":"2026-11-26T00:00:00Z","bucket_width":"1d",` +
				`"endpoint":"completions","group_set":["api_key_id","batch","model","project_id","service_tier","user_id"],` +
				`"model":"gpt-6-sol","project_id":"proj_abc","service_tier":"default","user_id":"user-abc"}`)},
		Data: (`{"api_key_id":"key_abc","batch":false,"input_cached_tokens":400,"input_tokens":1000,` +
			`"model":"gpt-6-sol","num_model_requests":5,"object":"organization.usage.completions.result",` +
			`"output_tokens":500,"project_id":"proj_abc","service_tier":"default","user_id":"user-abc"}`),
		Salt: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	}
}

// The event format is frozen: this vector, published in the README, must
// keep giving the same canonical bytes and hash (OGMA_UPDATE_GOLDEN=1 writes
// it, which must never be needed again once data exists).
func TestVector(t *testing.T) {
	v := sample()
	rec, err := event.Seal(v.Event, []byte(v.Data), v.Salt, event.Source{})
	if err != nil {
		t.Fatal(err)
	}
	v.Event, v.DataDigest, v.Canonical, v.Hash = rec.Event, rec.Event.DataDigest, rec.Canonical, rec.Hash
	got, _ := json.MarshalIndent(v, "", "  ")
	if os.Getenv("OGMA_UPDATE_GOLDEN") != "" {
		if _, err := os.Stat(vectorFile); err != nil {
			os.WriteFile(vectorFile, append(got, '\n'), 0o644)
		}
	}
	want, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var w vector
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if w.Canonical != v.Canonical || w.Hash != v.Hash || w.DataDigest != v.DataDigest {
		t.Fatalf("the v1 format changed:\ngot  %s\nwant %s", got, want)
	}
	// The file's own event fields seal to its canonical bytes.
	again, err := event.Seal(w.Event, []byte(w.Data), w.Salt, event.Source{})
	if err != nil || again.Canonical != w.Canonical || again.Hash != w.Hash {
		t.Fatalf("the vector's event does not seal to its canonical bytes (%v)", err)
	}
	// And independently of the package: the hash is SHA-256 of the bytes,
	// the data digest SHA-256 of salt ‖ data.
	h := sha256.Sum256([]byte(w.Canonical))
	salt, _ := hex.DecodeString(w.Salt)
	d := sha256.Sum256(append(salt, w.Data...))
	if hex.EncodeToString(h[:]) != w.Hash || hex.EncodeToString(d[:]) != w.DataDigest {
		t.Error("the vector does not recompute with plain SHA-256")
	}
}

// Canonicalizing twice changes nothing; key order and whitespace of the
// input do not matter.
func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[true,null,"x"],"c":{"z":0.5,"y":1e3}}`))
	f.Add([]byte(`{"a": "\u00e9", "b": -0.0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := event.Canonicalize(b)
		if err != nil {
			return
		}
		again, err := event.Canonicalize(c)
		if err != nil || string(again) != string(c) {
			t.Fatalf("canonicalizing twice changed %s into %s (%v)", c, again, err)
		}
	})
}

// The README publishes the vector; it must be this one.
func TestReadmeShowsVector(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var w vector
	b, _ := os.ReadFile(vectorFile)
	json.Unmarshal(b, &w)
	for _, s := range []string{w.Canonical, w.Hash, w.DataDigest, w.Data, w.Salt} {
		if !strings.Contains(string(readme), s) {
			t.Errorf("README does not show %.60s…", s)
		}
	}
}

// The direct writers give the bytes JCS gives: for keys, and for whole
// events with a canonical key, whatever the strings hold.
func FuzzCanonicalFast(f *testing.F) {
	f.Add("acme", "usage.completions", "gpt-6-sol", "user-1", uint64(1), uint32(0))
	f.Add("t\u2028\"\\\x01é", "s\t\n", "<&>", "\x7f\U0001F600", uint64(1<<53-1), uint32(7))
	f.Fuzz(func(t *testing.T, tenant, stream, model, user string, seq uint64, rev uint32) {
		key := map[string]any{"endpoint": stream, "model": model, "user_id": user, "group_set": []string{"model", user}}
		slow := func(v any) ([]byte, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			return event.Canonicalize(b)
		}
		want, err := slow(key)
		if err != nil {
			return
		}
		got, ok := event.CanonicalFlat(key)
		if ok && string(got) != string(want) {
			t.Fatalf("CanonicalFlat = %s, JCS = %s", got, want)
		}
		e := event.Event{Tenant: tenant, Seq: seq, Prev: event.Genesis, Kind: event.Fact, Vendor: "openai", Stream: stream,
			Key: want, Rev: rev, ObservedAt: model}
		a, errA := event.Seal(e, []byte(`{}`), strings.Repeat("ab", 32), event.Source{})
		b, errB := event.SealCanonicalKey(e, []byte(`{}`), strings.Repeat("ab", 32), event.Source{})
		if (errA == nil) != (errB == nil) || errA == nil && (a.Canonical != b.Canonical || a.Hash != b.Hash) {
			t.Fatalf("Seal and SealCanonicalKey differ:\n%s (%v)\n%s (%v)", a.Canonical, errA, b.Canonical, errB)
		}
		if errA != nil {
			return
		}
		// A draft sealed at the event's place is the same record.
		drafted := e
		drafted.DataDigest = a.Event.DataDigest
		drafted.Prev, drafted.Rev, drafted.Seq = "", 0, 0
		if d, ok := event.NewDraft(drafted); ok {
			a.Sealed = []byte("sealed bytes")
			v, hash, ok := d.Seal(e.Prev, e.Rev, e.Seq, a.Sealed, event.Source{})
			if !ok && e.Seq > 1<<53-1 {
				return // beyond JCS's exact integers: Seal's path
			}
			if !ok || hash != a.Hash || string(v) != string(a.Marshal()) {
				t.Fatalf("a sealed draft differs from Seal:\n%s %s\n%s %s", v, hash, a.Marshal(), a.Hash)
			}
		}
	})
}

// A vendor's row decoded with UseNumber canonicalizes directly to the bytes
// the JCS path gives it, or is refused and takes that path.
func FuzzCanonicalFlatRow(f *testing.F) {
	f.Add(`{"model":"gpt-6-sol","input_tokens":1000,"batch":false,"user_id":null,"num_model_requests":-3}`)
	f.Add(`{"a":0,"b":-0,"c":1.5,"d":1e3,"e":123456789012345,"f":1234567890123456,"g":true}`)
	f.Fuzz(func(t *testing.T, row string) {
		d := json.NewDecoder(strings.NewReader(row))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) != nil || m == nil {
			return
		}
		got, ok := event.CanonicalFlat(m)
		if !ok {
			return
		}
		// What the JCS path makes of the same map (a duplicate name is
		// already gone: the decoder keeps the last).
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := event.Canonicalize(b)
		if err != nil {
			t.Fatalf("CanonicalFlat took %q, which JCS refuses: %v", row, err)
		}
		if string(got) != string(want) {
			t.Fatalf("CanonicalFlat(%q) = %s, JCS = %s", row, got, want)
		}
	})
}

// The ogma.events record carries the hashed bytes once, as its event
// member, and decodes back to the same record; a record of the earlier
// form (the event as an object, its canonical bytes as a string) decodes
// too.
func TestRecordCarriesTheCanonicalBytes(t *testing.T) {
	v := sample()
	rec, err := event.Seal(v.Event, []byte(v.Data), v.Salt, event.Source{Partition: 2, Offset: 7})
	if err != nil {
		t.Fatal(err)
	}
	b := rec.Marshal()
	var plain struct {
		Event json.RawMessage `json:"event"`
		Hash  string          `json:"hash"`
	}
	if err := json.Unmarshal(b, &plain); err != nil {
		t.Fatalf("the record is not JSON: %v\n%s", err, b)
	}
	if string(plain.Event) != rec.Canonical || plain.Hash != rec.Hash {
		t.Errorf("event member = %s, want the canonical bytes %s", plain.Event, rec.Canonical)
	}
	got, err := event.DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Errorf("DecodeRecord(Marshal()) differs (-want +got):\n%s", diff)
	}

	old, _ := json.Marshal(map[string]any{"event": rec.Event, "canonical": rec.Canonical, "hash": rec.Hash,
		"data": json.RawMessage(rec.Data), "salt": rec.Salt, "source": rec.Source})
	got, err = event.DecodeRecord(old)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Errorf("DecodeRecord(earlier form) differs (-want +got):\n%s", diff)
	}
}
