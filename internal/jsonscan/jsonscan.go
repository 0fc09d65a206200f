// Package jsonscan reads JSON texts of known shapes left to right, without
// reflection: the records Ogma writes itself, and flat vendor objects. It
// never guesses. Each reader reports ok=false for any text it cannot read
// exactly as encoding/json would, and its callers then take the
// encoding/json path, which stays the authority (fuzz tests hold the two to
// one result).
package jsonscan

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Scanner reads a JSON text from B[I:].
type Scanner struct {
	B []byte
	I int
}

// Lit moves past lit if the text continues with it.
func (s *Scanner) Lit(lit string) bool {
	if !bytes.HasPrefix(s.B[s.I:], []byte(lit)) {
		return false
	}
	s.I += len(lit)
	return true
}

// Peek reports whether the text continues with lit, without moving.
func (s *Scanner) Peek(lit string) bool { return bytes.HasPrefix(s.B[s.I:], []byte(lit)) }

// End reports whether the whole text has been read.
func (s *Scanner) End() bool { return s.I == len(s.B) }

// PlainString reads a string of valid UTF-8 without escapes or control
// characters: one whose JSON and JCS forms are its bytes in quotes.
func (s *Scanner) PlainString() (string, bool) {
	raw, ok := s.plain()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// plain reads a plain string and returns it quotes included.
func (s *Scanner) plain() ([]byte, bool) {
	b := s.B
	if s.I >= len(b) || b[s.I] != '"' {
		return nil, false
	}
	ascii := true
	for j := s.I + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[s.I+1:j]) {
				return nil, false // encoding/json would replace the bad bytes
			}
			raw := b[s.I : j+1]
			s.I = j + 1
			return raw, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// StringAs is String returning was, without a copy, when the string is
// plain and equal to it.
func (s *Scanner) StringAs(was string) (string, bool) {
	start := s.I
	if raw, ok := s.plain(); ok {
		if string(raw[1:len(raw)-1]) == was {
			return was, true
		}
		return string(raw[1 : len(raw)-1]), true
	}
	s.I = start
	return s.String()
}

// String reads any string, escapes included, as encoding/json does.
func (s *Scanner) String() (string, bool) {
	if v, ok := s.PlainString(); ok {
		return v, true
	}
	j := endOfString(s.B, s.I)
	if j < 0 || s.B[s.I] != '"' {
		return "", false
	}
	v, ok := unescape(s.B[s.I+1 : j])
	if !ok {
		// Surrogate pairs, invalid UTF-8 and errors: encoding/json's rules.
		if json.Unmarshal(s.B[s.I:j+1], &v) != nil {
			return "", false
		}
	}
	s.I = j + 1
	return v, true
}

// unescape decodes the inside of a string of valid UTF-8 whose escapes are
// the one-letter ones or \u of a code point outside the surrogates, as
// json.Marshal writes '<', '>' and '&'. ok is false for anything else.
func unescape(b []byte) (string, bool) {
	if !utf8.Valid(b) {
		return "", false
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x20 {
			return "", false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i == len(b) {
			return "", false
		}
		switch b[i] {
		case '"', '\\', '/':
			out = append(out, b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(b) {
				return "", false
			}
			r, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 16)
			if err != nil || r >= 0xd800 && r < 0xe000 {
				return "", false
			}
			out = utf8.AppendRune(out, rune(r))
			i += 4
		default:
			return "", false
		}
	}
	return string(out), true
}

// Int reads an integer of at most 18 digits: an optional minus, no
// leading zero, no fraction or exponent.
func (s *Scanner) Int() (int64, bool) {
	b := s.B
	j := s.I
	if j < len(b) && b[j] == '-' {
		j++
	}
	k := j
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		k++
	}
	if k == j || k-j > 18 || (b[j] == '0' && k-j > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[s.I:k]), 10, 64)
	if err != nil {
		return 0, false
	}
	s.I = k
	return n, true
}

// Skip moves past one value, finding its end by tracking strings and
// nesting without checking what is inside; the caller validates what it
// keeps (json.Valid). It returns the value's bytes.
func (s *Scanner) Skip() ([]byte, bool) {
	b := s.B
	if s.I >= len(b) {
		return nil, false
	}
	start := s.I
	switch b[s.I] {
	case '{', '[':
		depth := 0
		for j := s.I; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = endOfString(b, j); j < 0 {
					return nil, false
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.I = j + 1
					return b[start:s.I], true
				}
			}
		}
		return nil, false
	case '"':
		j := endOfString(b, s.I)
		if j < 0 {
			return nil, false
		}
		s.I = j + 1
		return b[start:s.I], true
	}
	j := s.I
	for j < len(b) && !isDelimiter(b[j]) {
		j++
	}
	if j == s.I {
		return nil, false
	}
	s.I = j
	return b[start:j], true
}

// isDelimiter reports whether c ends a number or literal.
func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
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

func (s *Scanner) space() {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Members calls each with the name and value bytes of every member of the
// object b, in order, while it returns true. b must be valid JSON (values
// are found, not checked); ok is false if b is not an object or a name has
// escapes, and then each may have seen some members.
func Members(b []byte, each func(name string, value []byte) bool) (ok bool) {
	s := Scanner{B: b}
	s.space()
	if !s.Lit("{") {
		return false
	}
	s.space()
	if s.Lit("}") {
		return true
	}
	for {
		name, ok := s.PlainString()
		if !ok {
			return false
		}
		s.space()
		if !s.Lit(":") {
			return false
		}
		s.space()
		v, ok := s.Skip()
		if !ok {
			return false
		}
		if !each(name, v) {
			return true
		}
		s.space()
		if s.Lit("}") {
			return true
		}
		if !s.Lit(",") {
			return false
		}
		s.space()
	}
}

// Member is one member of a flat object, both parts in JCS form: Name is
// the name without quotes, Value the value's bytes.
type Member struct {
	Name  []byte
	Value []byte
}

// Flat reads a JSON object whose members are all already in JCS form —
// names of printable ASCII without escapes; values that are strings of
// valid UTF-8 without escapes or control characters, integers of at most
// 15 digits (not -0), true, false or null — with any whitespace between
// tokens, the shape of a vendor's usage row. The members come in the order
// of the text; ok is false for any other text, nested values included.
func Flat(b []byte, dst []Member) (members []Member, ok bool) {
	s := Scanner{B: b}
	s.space()
	if !s.Lit("{") {
		return nil, false
	}
	s.space()
	if s.Lit("}") {
		s.space()
		return dst, s.End()
	}
	for {
		raw, ok := s.plain()
		if !ok || !printableASCII(raw) {
			return nil, false
		}
		s.space()
		if !s.Lit(":") {
			return nil, false
		}
		s.space()
		v, ok := s.canonicalScalar()
		if !ok {
			return nil, false
		}
		dst = append(dst, Member{Name: raw[1 : len(raw)-1], Value: v})
		s.space()
		if s.Lit("}") {
			s.space()
			return dst, s.End()
		}
		if !s.Lit(",") {
			return nil, false
		}
		s.space()
	}
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// canonicalScalar reads a scalar already in JCS form.
func (s *Scanner) canonicalScalar() ([]byte, bool) {
	if s.I >= len(s.B) {
		return nil, false
	}
	switch c := s.B[s.I]; {
	case c == '"':
		return s.plain()
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if s.Peek(lit) {
				s.I += len(lit)
				return s.B[s.I-len(lit) : s.I], true
			}
		}
		return nil, false
	}
	start := s.I
	n, ok := s.Int()
	digits := s.I - start
	if n < 0 {
		digits--
	}
	if !ok || digits > 15 || (n == 0 && s.B[start] == '-') {
		s.I = start
		return nil, false
	}
	if s.I < len(s.B) {
		if c := s.B[s.I]; c == '.' || c == 'e' || c == 'E' {
			s.I = start
			return nil, false
		}
	}
	return s.B[start:s.I], true
}

// AppendObject appends the JCS object of members whose parts are in JCS
// form (see [Member]), in name order. ok is false if two members share a
// name.
func AppendObject(b []byte, members []Member) ([]byte, bool) {
	var buf [32]int
	order := buf[:0]
	for i := range members {
		order = append(order, i)
	}
	if len(order) <= len(buf) {
		// An insertion sort of indexes: rows have a dozen members, and
		// sorting was most of the cost of writing them.
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && string(members[order[j]].Name) < string(members[order[j-1]].Name); j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
	} else {
		slices.SortFunc(order, func(x, y int) int { return bytes.Compare(members[x].Name, members[y].Name) })
	}
	b = append(b, '{')
	for i, k := range order {
		m := members[k]
		if i > 0 {
			if bytes.Equal(members[order[i-1]].Name, m.Name) {
				return nil, false
			}
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, m.Name...)
		b = append(b, '"', ':')
		b = append(b, m.Value...)
	}
	return append(b, '}'), true
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// Valid reports whether b is one JSON value, as json.Valid does, several
// times faster.
func Valid(b []byte) bool {
	s := Scanner{B: b}
	s.space()
	if !s.valid(0) {
		return false
	}
	s.space()
	return s.End()
}

// valid moves past one valid value at nesting depth.
func (s *Scanner) valid(depth int) bool {
	b := s.B
	if s.I >= len(b) {
		return false
	}
	switch c := b[s.I]; c {
	case '{', '[':
		if depth++; depth > maxDepth {
			return false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.I++
		s.space()
		if s.I < len(b) && b[s.I] == closer {
			s.I++
			return true
		}
		for {
			if c == '{' {
				if !s.validString() {
					return false
				}
				s.space()
				if !s.Lit(":") {
					return false
				}
				s.space()
			}
			if !s.valid(depth) {
				return false
			}
			s.space()
			if s.I >= len(b) {
				return false
			}
			switch b[s.I] {
			case ',':
				s.I++
				s.space()
			case closer:
				s.I++
				return true
			default:
				return false
			}
		}
	case '"':
		return s.validString()
	case 't':
		return s.Lit("true")
	case 'f':
		return s.Lit("false")
	case 'n':
		return s.Lit("null")
	}
	return s.validNumber()
}

func (s *Scanner) validString() bool {
	b := s.B
	if s.I >= len(b) || b[s.I] != '"' {
		return false
	}
	for j := s.I + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s.I = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j++; j >= len(b) {
				return false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return false
				}
				for _, h := range b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func (s *Scanner) validNumber() bool {
	b := s.B
	j := s.I
	digits := func() int {
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if digits() == 0 {
		return false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if digits() == 0 {
			return false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return false
		}
	}
	s.I = j
	return true
}
