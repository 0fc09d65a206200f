// Package event defines the chained event, v1 — the format every verifier
// recomputes, frozen once data exists.
//
// The hashed object is the RFC 8785 (JCS) canonical form of
//
//	{"v":1, "tenant":"…", "seq":N, "prev":"<hex>", "kind":"fact|manifest|identity|link",
//	 "vendor":"openai|anthropic|ogma", "stream":"…", "key":{…}, "rev":R,
//	 "observed_at":"<RFC 3339>", "data_digest":"<hex>"}
//
// and hash = hex(SHA-256(canonical)). seq starts at 1 per tenant; the first
// prev is 64 zeros. The vendor's object is kept beside the hashed event as
// data = JCS(object), with a salt of 32 random bytes:
// data_digest = hex(SHA-256(salt ‖ data)). Dedupe compares the unsalted
// content digest hex(SHA-256(data)), which is never published. Erasing a
// person deletes data and salt; the chain still verifies.
package event

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/ogma-dev/ogma/internal/jsonscan"
)

// Version is the event format version.
const Version = 1

// Kinds of event.
const (
	Fact     = "fact"
	Manifest = "manifest"
	Identity = "identity"
	Link     = "link"
)

// Genesis is the prev of a tenant's first event.
var Genesis = strings.Repeat("0", 64)

// Event is the hashed part of a chained event.
type Event struct {
	V      int    `json:"v"`
	Tenant string `json:"tenant"`
	Seq    uint64 `json:"seq"`
	Prev   string `json:"prev"`
	Kind   string `json:"kind"`
	Vendor string `json:"vendor"`
	Stream string `json:"stream"`
	// Key is the natural identity, a JSON object in canonical form.
	Key        json.RawMessage `json:"key"`
	Rev        uint32          `json:"rev"`
	ObservedAt string          `json:"observed_at"`
	DataDigest string          `json:"data_digest"`
}

// Canonical returns the JCS bytes of e: exactly what is hashed.
func (e *Event) Canonical() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event: marshal: %w", err)
	}
	return Canonicalize(b)
}

// Canonicalize returns the RFC 8785 canonical form of a JSON text.
func Canonicalize(b []byte) ([]byte, error) {
	c, err := jcs.Transform(b)
	if err != nil {
		return nil, fmt.Errorf("event: canonicalize: %w", err)
	}
	return c, nil
}

// Hash returns hex(SHA-256(canonical)).
func Hash(canonical []byte) string {
	h := sha256.Sum256(canonical)
	return hex.EncodeToString(h[:])
}

// DataDigest returns hex(SHA-256(salt ‖ data)) for a hex salt and the
// canonical data bytes.
func DataDigest(saltHex string, data []byte) (string, error) {
	salt, err := parseSalt(saltHex)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(salt[:])
	h.Write(data)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])), nil
}

// parseSalt reads a salt: 32 bytes of hex.
func parseSalt(saltHex string) ([32]byte, error) {
	var salt [32]byte
	if len(saltHex) != 2*len(salt) {
		return salt, fmt.Errorf("event: salt must be 32 bytes of hex, got %q", saltHex)
	}
	for i := range salt {
		hi, ok1 := unhex(saltHex[2*i])
		lo, ok2 := unhex(saltHex[2*i+1])
		if !ok1 || !ok2 {
			return salt, fmt.Errorf("event: salt must be 32 bytes of hex, got %q", saltHex)
		}
		salt[i] = hi<<4 | lo
	}
	return salt, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ContentDigest returns hex(SHA-256(data)): what dedupe compares.
func ContentDigest(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Time formats an instant as observed_at: RFC 3339 in UTC, with as many
// fractional digits as it has.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Record is an ogma.events record: the event, its canonical bytes and
// hash, the data and salt kept beside it — sealed under the tenant's data
// key, until [Record.Open] — and where it came from in ogma.raw.
// [Record.Marshal] and [DecodeRecord] give its form in Kafka.
type Record struct {
	Event     Event
	Canonical string
	Hash      string
	Data      json.RawMessage
	Salt      string
	// Sealed is Data and Salt sealed ([SealData]); a record carries
	// either, and Marshal writes Sealed when it is set.
	Sealed []byte
	Source Source
}

// Source is the raw record an event was made from: the last one, for
// events made from several (manifests, absent revisions).
type Source struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Seal completes e — the data digest of data under salt, then the canonical
// bytes and the hash — and returns the record to publish.
func Seal(e Event, data []byte, salt string, src Source) (*Record, error) {
	return seal(e, data, salt, src, false)
}

// SealCanonicalKey is Seal for an e.Key already in canonical form, as
// every key from pipeline/normalize is: it writes the canonical bytes
// directly instead of through a JCS parser, several times faster. A key
// not in canonical form would be hashed as it is; use Seal for keys from
// elsewhere.
func SealCanonicalKey(e Event, data []byte, salt string, src Source) (*Record, error) {
	return seal(e, data, salt, src, true)
}

func seal(e Event, data []byte, salt string, src Source, canonicalKey bool) (*Record, error) {
	d, err := DataDigest(salt, data)
	if err != nil {
		return nil, err
	}
	e.V, e.DataDigest = Version, d
	var c []byte
	ok := false
	if canonicalKey {
		c, ok = e.appendCanonical(make([]byte, 0, 256+len(e.Key)))
	}
	if !ok {
		if c, err = e.Canonical(); err != nil {
			return nil, err
		}
	}
	return &Record{Event: e, Canonical: string(c), Hash: Hash(c), Data: data, Salt: salt, Source: src}, nil
}

// Marshal returns r as the value of an ogma.events record:
//
//	{"event":<the canonical bytes>,"hash":"…","sealed":"<base64>","source":{"partition":p,"offset":o}}
//
// or, with data and salt in the clear (r.Sealed nil, as records were
// before sealing), "data":<data>,"salt":"…" in place of "sealed". The
// event member is the exact hashed bytes — JCS output is a JSON object —
// so the record carries them once, unescaped; a reader that parses it with
// any JSON library can canonicalize it again to the same bytes. r.Data
// must be JSON (it is canonical everywhere Ogma makes it); empty is null.
func (r *Record) Marshal() []byte {
	b := make([]byte, 0, 96+len(r.Canonical)+len(r.Hash)+len(r.Data)+len(r.Salt)+base64.StdEncoding.EncodedLen(len(r.Sealed)))
	b = append(b, `{"event":`...)
	b = append(b, r.Canonical...)
	b = appendJSONString(append(b, `,"hash":`...), r.Hash)
	if r.Sealed != nil {
		return appendRecordTail(b, r.Sealed, r.Source)
	}
	b = append(b, `,"data":`...)
	if len(r.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Data...)
	}
	b = appendJSONString(append(b, `,"salt":`...), r.Salt)
	return appendSource(b, r.Source)
}

// appendRecordTail appends what follows the hash in a sealed record.
func appendRecordTail(b, sealed []byte, src Source) []byte {
	b = append(b, `,"sealed":"`...)
	b = base64.StdEncoding.AppendEncode(b, sealed)
	return appendSource(append(b, '"'), src)
}

// appendSource appends a record's last member.
func appendSource(b []byte, src Source) []byte {
	b = strconv.AppendInt(append(b, `,"source":{"partition":`...), int64(src.Partition), 10)
	b = strconv.AppendInt(append(b, `,"offset":`...), src.Offset, 10)
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string: as JCS writes it, or, for
// invalid UTF-8 (never a hex hash or salt), as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	if out, ok := AppendString(b, s); ok {
		return out
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// DecodeRecord parses an ogma.events record value. It also reads the
// earlier form, which carried the event as an object beside its canonical
// bytes as a string.
func DecodeRecord(b []byte) (*Record, error) {
	if r, ok := decodeFast(b); ok && r.Event.V == Version && jsonscan.Valid(r.Event.Key) && (r.Sealed != nil || jsonscan.Valid(r.Data)) {
		return r, nil
	}
	return decodeGeneric(b)
}

// decodeGeneric is DecodeRecord through encoding/json.
func decodeGeneric(b []byte) (*Record, error) {
	var w struct {
		Event     json.RawMessage `json:"event"`
		Canonical *string         `json:"canonical"`
		Hash      string          `json:"hash"`
		Data      json.RawMessage `json:"data"`
		Salt      string          `json:"salt"`
		Sealed    []byte          `json:"sealed"`
		Source    Source          `json:"source"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("event record: %w", err)
	}
	r := &Record{Canonical: string(w.Event), Hash: w.Hash, Data: w.Data, Salt: w.Salt, Sealed: w.Sealed, Source: w.Source}
	if w.Canonical != nil {
		r.Canonical = *w.Canonical
	}
	if err := json.Unmarshal(w.Event, &r.Event); err != nil {
		return nil, fmt.Errorf("event record: event: %w", err)
	}
	if r.Event.V != Version {
		return nil, fmt.Errorf("event record: version %d, want %d", r.Event.V, Version)
	}
	return r, nil
}
