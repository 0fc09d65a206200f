package event_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// A record's data and salt travel sealed: the record holds neither in the
// clear, opens under its tenant's key to exactly what was sealed (the
// bytes its data digest covers), and under no other key — nor beside
// another event, nor as another tenant's.
func TestSealedDataOpensOnlyUnderItsTenantsKey(t *testing.T) {
	key := func() []byte {
		k := make([]byte, event.DataKeySize)
		rand.Read(k)
		return k
	}
	aead, err := event.DataCipher(key())
	if err != nil {
		t.Fatal(err)
	}
	data, salt := []byte(`{"input_tokens":1005,"user_id":"user-5"}`), strings.Repeat("5e", 32)
	rec, err := event.Seal(event.Event{Tenant: "acme", Seq: 3, Prev: event.Genesis, Kind: event.Fact, Vendor: "openai",
		Stream: "usage.completions", Key: json.RawMessage(`{"id":"a"}`), ObservedAt: "2026-11-27T12:00:00Z"}, data, salt, event.Source{Partition: 1, Offset: 9})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Sealed, err = event.SealData(aead, "acme", rec.Event.DataDigest, data, salt); err != nil {
		t.Fatal(err)
	}
	again, _ := event.SealData(aead, "acme", rec.Event.DataDigest, data, salt)
	if !bytes.Equal(again, rec.Sealed) {
		t.Error("sealing the same data twice gave other bytes: a replay would not be byte-identical")
	}
	value := rec.Marshal()
	if bytes.Contains(value, []byte("user-5")) || bytes.Contains(value, []byte(salt)) {
		t.Fatalf("the record holds its data or salt in the clear: %s", value)
	}

	got, err := event.DecodeRecord(value)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data != nil || got.Salt != "" {
		t.Fatalf("decoded without a key, the record has data %s, salt %q", got.Data, got.Salt)
	}
	if err := got.Open(aead); err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != string(data) || got.Salt != salt || got.Hash != rec.Hash {
		t.Fatalf("opened: data %s salt %s hash %s; want %s %s %s", got.Data, got.Salt, got.Hash, data, salt, rec.Hash)
	}
	if d, _ := event.DataDigest(got.Salt, got.Data); d != got.Event.DataDigest {
		t.Error("the opened data does not match the event's data digest")
	}

	other, _ := event.DataCipher(key())
	for name, r := range map[string]*event.Record{
		"another key":    {Event: rec.Event, Sealed: rec.Sealed},
		"another tenant": {Event: with(rec.Event, func(e *event.Event) { e.Tenant = "other" }), Sealed: rec.Sealed},
		"another event":  {Event: with(rec.Event, func(e *event.Event) { e.DataDigest = strings.Repeat("0", 64) }), Sealed: rec.Sealed},
	} {
		k := aead
		if name == "another key" {
			k = other
		}
		if err := r.Open(k); err == nil {
			t.Errorf("sealed data opened under %s", name)
		}
	}
	plain, _ := event.DecodeRecord((&event.Record{Event: rec.Event, Canonical: rec.Canonical, Hash: rec.Hash, Data: data, Salt: salt}).Marshal())
	if err := plain.Open(aead); err != event.ErrNotSealed || string(plain.Data) != string(data) {
		t.Errorf("a record in the clear: Open = %v, data %s", err, plain.Data)
	}
}

func with(e event.Event, f func(*event.Event)) event.Event {
	f(&e)
	return e
}
