// Package stream names one tenant's stream of one vendor — the identity
// every per-stream record is keyed by — and holds the connector's record of
// where each stream stands (ogma.cursors), which the API reads too.
package stream

import (
	"fmt"
	"strings"
)

// ID is one tenant's stream of one vendor, such as acme's usage.completions
// of openai. None of the three holds a "/": tenant ids cannot, and vendors
// and streams are Ogma's own names.
type ID struct {
	Tenant string
	Vendor string
	Stream string
}

// Key returns "<tenant>/<vendor>/<stream>": the key of the stream's
// records, or the start of it for records of its parts.
func (id ID) Key() string { return id.Tenant + "/" + id.Vendor + "/" + id.Stream }

// ParseKey reads a key that starts with an ID, and returns what follows it
// ("" or "/…").
func ParseKey(key string) (ID, string, error) {
	parts := strings.SplitN(key, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return ID{}, "", fmt.Errorf("stream key %q: want <tenant>/<vendor>/<stream>", key)
	}
	id := ID{Tenant: parts[0], Vendor: parts[1], Stream: parts[2]}
	if len(parts) == 4 {
		return id, "/" + parts[3], nil
	}
	return id, "", nil
}
