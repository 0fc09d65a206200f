package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ogma-dev/ogma/internal/jsonscan"
)

// Every consumer of ogma.events decodes every record; through encoding/json
// that was most of the ClickHouse sink's time. decodeFast reads the form
// [Record.Marshal] writes, and the event's JCS bytes, directly; anything
// else — escapes in a string, another member order, other whitespace — it
// leaves to encoding/json. A fuzz test holds both paths to one result.

// decodeFast parses b as Record.Marshal writes it; ok is false when b has
// another shape.
func decodeFast(b []byte) (r *Record, ok bool) {
	p := jsonscan.Scanner{B: b}
	if !p.Lit(`{"event":`) {
		return nil, false
	}
	ev, ok := object(&p)
	if !ok {
		return nil, false
	}
	r = &Record{Canonical: string(ev)}
	if !parseEvent(ev, &r.Event) {
		return nil, false
	}
	if !p.Lit(`,"hash":`) {
		return nil, false
	}
	if r.Hash, ok = p.PlainString(); !ok {
		return nil, false
	}
	if p.Lit(`,"sealed":`) {
		s, ok := p.PlainString()
		if !ok {
			return nil, false
		}
		var err error
		if r.Sealed, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, false
		}
	} else {
		if !p.Lit(`,"data":`) {
			return nil, false
		}
		data, ok := p.Skip()
		if !ok {
			return nil, false
		}
		r.Data = bytes.Clone(data)
		if !p.Lit(`,"salt":`) {
			return nil, false
		}
		if r.Salt, ok = p.PlainString(); !ok {
			return nil, false
		}
	}
	if !p.Lit(`,"source":{"partition":`) {
		return nil, false
	}
	part, ok := p.Int()
	if !ok || !p.Lit(`,"offset":`) {
		return nil, false
	}
	off, ok := p.Int()
	if !ok || !p.Lit("}}") || !p.End() || part != int64(int32(part)) {
		return nil, false
	}
	r.Source = Source{Partition: int32(part), Offset: off}
	return r, true
}

// parseEvent reads an event's JCS bytes: its members in sorted order, no
// whitespace, strings without escapes.
func parseEvent(b []byte, e *Event) bool {
	p := jsonscan.Scanner{B: b}
	str := func(name string, dst *string) bool {
		var ok bool
		if !p.Lit(name) {
			return false
		}
		*dst, ok = p.PlainString()
		return ok
	}
	num := func(name string) (int64, bool) {
		if !p.Lit(name) {
			return 0, false
		}
		return p.Int()
	}
	if !str(`{"data_digest":`, &e.DataDigest) || !p.Lit(`,"key":`) {
		return false
	}
	key, ok := object(&p)
	if !ok {
		return false
	}
	e.Key = bytes.Clone(key)
	if !str(`,"kind":`, &e.Kind) || !str(`,"observed_at":`, &e.ObservedAt) || !str(`,"prev":`, &e.Prev) {
		return false
	}
	rev, ok := num(`,"rev":`)
	if !ok || rev < 0 || rev > 1<<32-1 {
		return false
	}
	seq, ok := num(`,"seq":`)
	if !ok || seq < 0 {
		return false
	}
	if !str(`,"stream":`, &e.Stream) || !str(`,"tenant":`, &e.Tenant) {
		return false
	}
	v, ok := num(`,"v":`)
	if !ok || !str(`,"vendor":`, &e.Vendor) || !p.Lit("}") || !p.End() {
		return false
	}
	e.Rev, e.Seq, e.V = uint32(rev), uint64(seq), int(v)
	return true
}

// object moves past a JSON object and returns its bytes.
func object(p *jsonscan.Scanner) ([]byte, bool) {
	if !p.Peek("{") {
		return nil, false
	}
	return p.Skip()
}

// ParseCanonical reads an event from its canonical bytes, as a verifier
// must: bytes that are not exactly the JCS form of the event they hold are
// an error, since anyone recomputing the hash from the event's fields would
// get another.
func ParseCanonical(b []byte) (Event, error) {
	var e Event
	if parseEvent(b, &e) {
		// The members are in order without whitespace; the key, taken
		// whole, is checked on its own.
		if k, err := Canonicalize(e.Key); err == nil && bytes.Equal(k, e.Key) {
			return e, nil
		}
		return Event{}, errors.New("event: the key is not in canonical form")
	}
	e = Event{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("event: %w", err)
	}
	c, err := e.Canonical()
	if err != nil {
		return Event{}, err
	}
	if !bytes.Equal(c, b) {
		return Event{}, errors.New("event: not in canonical form")
	}
	return e, nil
}
