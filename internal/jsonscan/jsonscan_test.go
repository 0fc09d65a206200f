package jsonscan

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// Whatever the bytes, String either declines them or reads the string
// encoding/json reads.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"plain"`, `"a\u0026b\u003c\n\"\\\/"`, `"\ud83d\ude00"`, `"\u00e9t\u00E9"`, `"bad\x"`, "\"\xff\"", `"x\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Scanner{B: b}
		got, ok := s.String()
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(b[:s.I], &want); err != nil {
			t.Fatalf("String took %q, which encoding/json refuses: %v", b[:s.I], err)
		}
		if got != want {
			t.Fatalf("String(%q) = %q, encoding/json reads %q", b[:s.I], got, want)
		}
	})
}

// Whatever the bytes, Flat either declines them or reads an object whose
// members, written with AppendObject, are its JCS form.
func FuzzFlat(f *testing.F) {
	for _, s := range []string{
		`{"object":"organization.usage.completions.result","input_tokens":1000,"batch":false,"user_id":null,"model":"gpt-6-sol"}`,
		` { "a" : -12 , "b":"Zoë" } `, `{}`, `{"a":1,"a":2}`, `{"a":1.5}`, `{"a":-0}`, `{"a":1e3}`, `{"a":[1]}`,
		`{"a":1234567890123456}`, `{"é":1}`, `{"a":"\u0041"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, ok := Flat(b, nil)
		if !ok {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m == nil {
			t.Fatalf("Flat took %q, which is not a JSON object to encoding/json: %v", b, err)
		}
		got, ok := AppendObject(nil, ms)
		if len(m) != len(ms) {
			if ok {
				t.Fatalf("AppendObject wrote %q from %q, which has a repeated name", got, b)
			}
			return
		}
		want, err := jcs.Transform(b)
		if err != nil {
			t.Fatalf("jcs refuses %q: %v", b, err)
		}
		if !ok || string(got) != string(want) {
			t.Fatalf("AppendObject(Flat(%q)) = %q, %v; JCS is %q", b, got, ok, want)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(m)), slices.Sorted(slices.Values(names(ms)))) {
			t.Fatalf("Flat(%q) names %v", b, names(ms))
		}
	})
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Name))
	}
	return out
}

// Valid agrees with json.Valid on every input.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"]}`, ` [ ] `, `{}`, `01`, `-`, `1.`, `1e`, `"\x"`, "\"\xff\"", `{"a":1,}`, `[1 2]`, `nul`, `"\u12g4"`, "[" + strings.Repeat("[", 10000) + "]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func TestValidDepthIsEncodingJSONs(t *testing.T) {
	for _, n := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		b := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Errorf("depth %d: Valid = %v, json.Valid = %v", n, got, want)
		}
	}
}
