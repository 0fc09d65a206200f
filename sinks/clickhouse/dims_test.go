package clickhouse_test

import (
	"maps"
	"testing"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// A group's dims answer for the dimensions grouped by, "" (not found)
// for any other, and yield each grouped by once with its value.
func TestDims(t *testing.T) {
	d := clickhouse.DimsOf(map[string]string{"model": "gpt-6-sol", "day": "2026-12-01", "person": ""})
	for _, c := range []struct {
		name, want string
		found      bool
	}{
		{"model", "gpt-6-sol", true}, {"day", "2026-12-01", true}, {"person", "", true}, {"vendor", "", false},
	} {
		if got, found := d.Lookup(c.name); got != c.want || found != c.found || d.Get(c.name) != c.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", c.name, got, found, c.want, c.found)
		}
	}
	if all := maps.Collect(d.All()); !maps.Equal(all, map[string]string{"model": "gpt-6-sol", "day": "2026-12-01", "person": ""}) {
		t.Errorf("All() = %v", all)
	}
	if got := clickhouse.DimsOf(nil).Get("day"); got != "" {
		t.Errorf("no dims: Get(day) = %q", got)
	}
}
