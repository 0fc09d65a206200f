package event

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Every consumer of ogma.events decodes every record; through encoding/json
// that was most of the ClickHouse sink's time. decodeFast reads the form
// [Record.Marshal] writes, and the event's JCS bytes, directly; anything
// else — escapes in a string, another member order, other whitespace — it
// leaves to encoding/json. A fuzz test holds both paths to one result.

// decodeFast parses b as Record.Marshal writes it; ok is false when b has
// another shape.
func decodeFast(b []byte) (r *Record, ok bool) {
	p := parser{b: b}
	if !p.lit(`{"event":`) {
		return nil, false
	}
	start := p.i
	if !p.skipObject() {
		return nil, false
	}
	r = &Record{Canonical: string(b[start:p.i])}
	if !parseEvent(b[start:p.i], &r.Event) {
		return nil, false
	}
	if !p.lit(`,"hash":`) {
		return nil, false
	}
	if r.Hash, ok = p.plainString(); !ok || !p.lit(`,"data":`) {
		return nil, false
	}
	start = p.i
	if !p.skipValue() {
		return nil, false
	}
	r.Data = bytes.Clone(b[start:p.i])
	if !p.lit(`,"salt":`) {
		return nil, false
	}
	if r.Salt, ok = p.plainString(); !ok || !p.lit(`,"source":{"partition":`) {
		return nil, false
	}
	part, ok := p.integer()
	if !ok || !p.lit(`,"offset":`) {
		return nil, false
	}
	off, ok := p.integer()
	if !ok || !p.lit("}}") || p.i != len(b) || part != int64(int32(part)) {
		return nil, false
	}
	r.Source = Source{Partition: int32(part), Offset: off}
	return r, true
}

// parseEvent reads an event's JCS bytes: its members in sorted order, no
// whitespace, strings without escapes.
func parseEvent(b []byte, e *Event) bool {
	p := parser{b: b}
	str := func(name string, dst *string) bool {
		var ok bool
		if !p.lit(name) {
			return false
		}
		*dst, ok = p.plainString()
		return ok
	}
	num := func(name string) (int64, bool) {
		if !p.lit(name) {
			return 0, false
		}
		return p.integer()
	}
	if !str(`{"data_digest":`, &e.DataDigest) || !p.lit(`,"key":`) {
		return false
	}
	start := p.i
	if !p.skipObject() {
		return false
	}
	e.Key = bytes.Clone(b[start:p.i])
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
	if !ok || !str(`,"vendor":`, &e.Vendor) || !p.lit("}") || p.i != len(b) {
		return false
	}
	e.Rev, e.Seq, e.V = uint32(rev), uint64(seq), int(v)
	return true
}

// parser reads bytes left to right.
type parser struct {
	b []byte
	i int
}

func (p *parser) lit(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// plainString reads a JSON string of valid UTF-8 without escapes or control
// characters.
func (p *parser) plainString() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			if !utf8.Valid(p.b[p.i+1 : j]) {
				return "", false // encoding/json would replace the bad bytes
			}
			s := string(p.b[p.i+1 : j])
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// integer reads an optional minus and at most 18 digits.
func (p *parser) integer() (int64, bool) {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	k := j
	for k < len(p.b) && p.b[k] >= '0' && p.b[k] <= '9' {
		k++
	}
	if k == j || k-j > 18 || (p.b[j] == '0' && k-j > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.b[p.i:k]), 10, 64)
	if err != nil {
		return 0, false
	}
	p.i = k
	return n, true
}

// skipObject moves past a JSON object, skipValue past any JSON value. They
// find its end, tracking strings and nesting, without checking the inside:
// decodeFast's caller checks what it took with json.Valid.
func (p *parser) skipObject() bool {
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	return p.skipValue()
}

func (p *parser) skipValue() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch p.b[p.i] {
	case '{', '[':
		depth := 0
		for j := p.i; j < len(p.b); j++ {
			switch p.b[j] {
			case '"':
				if j = endOfString(p.b, j); j < 0 {
					return false
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					p.i = j + 1
					return true
				}
			}
		}
		return false
	case '"':
		j := endOfString(p.b, p.i)
		if j < 0 {
			return false
		}
		p.i = j + 1
		return true
	}
	j := p.i
	for j < len(p.b) && p.b[j] != ',' && p.b[j] != '}' && p.b[j] != ']' {
		j++
	}
	if j == p.i {
		return false
	}
	p.i = j
	return true
}

// endOfString returns the index of the quote that closes the string
// opening at i, or -1.
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}
