package event

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The processor canonicalizes every event and every key; going through
// encoding/json and a JCS parser for these fixed shapes was most of its
// time. What follows writes the same bytes directly, for the shapes it
// knows, and reports when it cannot so that callers take the JCS path.
// Tests check both paths agree.

// maxSafeInteger is the largest integer JCS (ECMAScript numbers) writes
// exactly.
const maxSafeInteger = 1<<53 - 1

// AppendString appends s as a JCS string (RFC 8785 §3.2.2.2): only '"',
// '\\' and control characters are escaped. ok is false for invalid UTF-8.
func AppendString(b []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return b, false
	}
	b = append(b, '"')
	plain := 0 // s[plain:i] needs no escape
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[plain:i]...)
		plain = i + 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			const hexDigits = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	b = append(b, s[plain:]...)
	return append(b, '"'), true
}

// CanonicalFlat returns the JCS form of an object whose values are strings,
// arrays of strings, nulls, booleans or integers given as [json.Number] of
// at most 15 digits — the shape of every event key and of a vendor's usage
// row — without a JSON parser. ok is false when it cannot: a name that is
// not ASCII (JCS sorts by UTF-16 code units), invalid UTF-8, a number with
// a fraction or exponent, or another value type.
func CanonicalFlat(m map[string]any) (b []byte, ok bool) {
	names := make([]string, 0, len(m))
	for k := range m {
		for i := 0; i < len(k); i++ {
			if k[i] >= utf8.RuneSelf {
				return nil, false
			}
		}
		names = append(names, k)
	}
	slices.Sort(names)
	b = append(make([]byte, 0, 256), '{')
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = AppendString(b, k); !ok {
			return nil, false
		}
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			if b, ok = AppendString(b, v); !ok {
				return nil, false
			}
		case []string:
			b = append(b, '[')
			for j, s := range v {
				if j > 0 {
					b = append(b, ',')
				}
				if b, ok = AppendString(b, s); !ok {
					return nil, false
				}
			}
			b = append(b, ']')
		case nil:
			b = append(b, "null"...)
		case bool:
			b = strconv.AppendBool(b, v)
		case json.Number:
			if !plainInteger(string(v)) {
				return nil, false
			}
			b = append(b, v...)
		default:
			return nil, false
		}
	}
	return append(b, '}'), true
}

// plainInteger reports whether s is an integer JCS writes as it is: an
// optional minus, then 1 to 15 digits without a leading zero, and not -0.
func plainInteger(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if len(digits) == 0 || len(digits) > 15 || digits[0] == '0' && (len(digits) > 1 || len(s) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// appendCanonical appends e's JCS form, its members in sorted order, with
// e.Key taken as already canonical. ok is false when a string is not UTF-8
// or seq is beyond what JCS writes exactly.
func (e *Event) appendCanonical(b []byte) ([]byte, bool) {
	b, ok := e.appendHead(b)
	if !ok {
		return nil, false
	}
	if b, ok = appendPlace(b, e.Prev, e.Rev, e.Seq); !ok {
		return nil, false
	}
	return e.appendTail(b)
}

// The members of an event sort as: data_digest, key, kind, observed_at,
// then its place in the chain — prev, rev, seq — then stream, tenant, v,
// vendor. A [Draft] writes the parts around the place ahead.

func (e *Event) appendHead(b []byte) ([]byte, bool) {
	if len(e.Key) == 0 {
		return nil, false
	}
	ok := true
	str := func(name, v string) {
		b = append(b, name...)
		if ok {
			b, ok = AppendString(b, v)
		}
	}
	b = append(b, '{')
	str(`"data_digest":`, e.DataDigest)
	b = append(b, `,"key":`...)
	b = append(b, e.Key...)
	str(`,"kind":`, e.Kind)
	str(`,"observed_at":`, e.ObservedAt)
	return b, ok
}

func appendPlace(b []byte, prev string, rev uint32, seq uint64) ([]byte, bool) {
	if seq > maxSafeInteger {
		return nil, false
	}
	b, ok := AppendString(append(b, `,"prev":`...), prev)
	b = strconv.AppendUint(append(b, `,"rev":`...), uint64(rev), 10)
	b = strconv.AppendUint(append(b, `,"seq":`...), seq, 10)
	return b, ok
}

func (e *Event) appendTail(b []byte) ([]byte, bool) {
	ok := true
	str := func(name, v string) {
		b = append(b, name...)
		if ok {
			b, ok = AppendString(b, v)
		}
	}
	str(`,"stream":`, e.Stream)
	str(`,"tenant":`, e.Tenant)
	b = strconv.AppendInt(append(b, `,"v":`...), int64(e.V), 10)
	str(`,"vendor":`, e.Vendor)
	return append(b, '}'), ok
}

// Draft is an event whose place in the chain — prev, rev and seq — is not
// known yet, with its canonical bytes around that place written ahead: the
// processor drafts events on every core, then seals them in chain order.
type Draft struct {
	e          Event
	head, tail []byte
}

// NewDraft drafts e, whose Key is canonical and DataDigest set; its Prev,
// Rev and Seq are ignored. ok is false when a string is not UTF-8: such an
// event is sealed with [Seal].
func NewDraft(e Event) (*Draft, bool) {
	e.V = Version
	b, ok := e.appendHead(make([]byte, 0, 224+len(e.Key)+len(e.Tenant)+len(e.Stream)))
	if !ok {
		return nil, false
	}
	head := b[:len(b):len(b)]
	if b, ok = e.appendTail(b); !ok {
		return nil, false
	}
	return &Draft{e: e, head: head, tail: b[len(head):]}, true
}

// DataDigest is the drafted event's data digest.
func (d *Draft) DataDigest() string { return d.e.DataDigest }

// Seal places the draft in the chain and returns the value of its
// ogma.events record — what [Record.Marshal] writes for the record
// [SealCanonicalKey] makes of the same event at prev, rev and seq, with
// sealed its Sealed ([SealData]) — and its hash, written in one buffer. ok
// is false when prev is not UTF-8 or seq beyond what JCS writes exactly.
func (d *Draft) Seal(prev string, rev uint32, seq uint64, sealed []byte, src Source) (value []byte, hash string, ok bool) {
	b := make([]byte, 0, 224+len(d.head)+len(prev)+len(d.tail)+base64.StdEncoding.EncodedLen(len(sealed)))
	b = append(append(b, `{"event":`...), d.head...)
	if b, ok = appendPlace(b, prev, rev, seq); !ok {
		return nil, "", false
	}
	b = append(b, d.tail...)
	hash = Hash(b[len(`{"event":`):])
	b = appendJSONString(append(b, `,"hash":`...), hash)
	return appendRecordTail(b, sealed, src), hash, true
}
