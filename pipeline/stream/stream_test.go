package stream_test

import (
	"testing"

	"github.com/ogma-dev/ogma/pipeline/stream"
)

// A key starts with the stream's identity, which parses back; what follows
// it is handed on.
func TestKeyParsesBack(t *testing.T) {
	id := stream.ID{Tenant: "acme-1", Vendor: "openai", Stream: "usage.completions"}
	for key, rest := range map[string]string{id.Key(): "", id.Key() + "/1764547200": "/1764547200", id.Key() + "/a/b/c": "/a/b/c"} {
		got, gotRest, err := stream.ParseKey(key)
		if err != nil || got != id || gotRest != rest {
			t.Errorf("ParseKey(%q) = %+v, %q, %v", key, got, gotRest, err)
		}
	}
	for _, bad := range []string{"", "acme", "acme/openai", "acme//usage", "/openai/usage"} {
		if _, _, err := stream.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
