// Package normalize turns raw vendor records into what the chain holds: a
// kind, a structured natural key, and the canonical (JCS) data, plus the
// content digest that dedupe compares. Vendor specifics stay here, one file
// per vendor.
package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Fact is one normalized vendor object.
type Fact struct {
	Kind string
	// Key is the canonical JSON of the natural key.
	Key []byte
	// Data is the canonical JSON of the vendor's object.
	Data []byte
	// Digest is the content digest dedupe compares: of Data, or of the
	// dedupe projection for directory objects.
	Digest string
}

// Error is a raw record that cannot be normalized; its message is the
// deadletter reason.
type Error struct{ Reason string }

func (e *Error) Error() string { return "normalize: " + e.Reason }

func bad(format string, a ...any) error { return &Error{Reason: fmt.Sprintf(format, a...)} }

// Normalize returns the fact of a raw record that carries data: a report
// row or a directory object.
func Normalize(r *envelope.Raw) (Fact, error) {
	if len(r.Data) == 0 {
		return Fact{}, bad("record has no data")
	}
	switch r.Vendor {
	case stream.OpenAI:
		return openAI(r)
	case stream.Anthropic:
		return anthropic(r)
	case LinkVendor:
		return link(r)
	}
	return Fact{}, bad("unknown vendor %q", r.Vendor)
}

// decode parses a JSON object keeping numbers exact.
func decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if d.More() {
		return nil, errors.New("trailing data after the object")
	}
	return m, nil
}

// canonical returns the JCS form of v.
func canonical(v any) ([]byte, error) {
	if m, ok := v.(map[string]any); ok {
		if b, ok := event.CanonicalFlat(m); ok {
			return b, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return event.Canonicalize(b)
}

// dimValue renders a grouping value for a key: strings as they are, booleans
// and numbers as text, null or missing as "".
func dimValue(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case bool:
		if t {
			return "true", nil
		}
		return "false", nil
	case json.Number:
		return t.String(), nil
	}
	return "", fmt.Errorf("grouping value of type %T", v)
}

// withoutVolatile returns m without the fields that change on every use
// (last_used_at, *_last_used_at), at any depth: the dedupe projection of a
// directory object, so that using a key is not a new revision of it.
func withoutVolatile(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, sub := range t {
			if k == "last_used_at" || strings.HasSuffix(k, "_last_used_at") {
				continue
			}
			out[k] = withoutVolatile(sub)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, sub := range t {
			out[i] = withoutVolatile(sub)
		}
		return out
	}
	return v
}

// DirectoryDigest returns the dedupe digest of a directory object's
// canonical data: the content digest of its projection without volatile
// fields. Null data (an absent revision) digests as itself.
func DirectoryDigest(data []byte) (string, error) {
	if string(data) == "null" {
		return event.ContentDigest(data), nil
	}
	m, err := decode(data)
	if err != nil {
		return "", err
	}
	p, err := canonical(withoutVolatile(m))
	if err != nil {
		return "", err
	}
	return event.ContentDigest(p), nil
}
