package clickhouse

import (
	"iter"
	"maps"
	"slices"
)

// Dims are a group's values of the dimensions its query groups by.
type Dims struct {
	names  []string // the query's GroupBy: its rows share it
	values []string
}

// DimsOf returns the dims of a group whose value of each dimension of m
// is m's.
func DimsOf(m map[string]string) Dims {
	d := Dims{names: slices.Sorted(maps.Keys(m))}
	for _, n := range d.names {
		d.values = append(d.values, m[n])
	}
	return d
}

// Get returns the group's value of dimension name: "" when its query does
// not group by name.
func (d Dims) Get(name string) string {
	v, _ := d.Lookup(name)
	return v
}

// Lookup returns the group's value of dimension name, and whether its
// query groups by name.
func (d Dims) Lookup(name string) (string, bool) {
	if i := slices.Index(d.names, name); i >= 0 {
		return d.values[i], true
	}
	return "", false
}

// All yields each dimension the group's query groups by, in its order,
// with the group's value.
func (d Dims) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i, n := range d.names {
			if !yield(n, d.values[i]) {
				return
			}
		}
	}
}
