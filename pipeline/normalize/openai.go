package normalize

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/internal/jsonscan"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// IsDirectory reports whether stream is a directory (identity) stream.
func IsDirectory(vendor, name string) bool { return stream.KindOf(vendor, name) == stream.Directory }

// IsLog reports whether stream is a log stream: events identified by id,
// neither bucketed nor walked.
func IsLog(vendor, name string) bool { return stream.KindOf(vendor, name) == stream.AuditLog }

// IsReport reports whether stream is a report stream (bucketed facts).
func IsReport(vendor, name string) bool {
	s, _ := stream.Lookup(vendor, name)
	return s.Report()
}

func openAI(r *envelope.Raw) (Fact, error) {
	if f, ok := usageFlat(r); ok {
		return f, nil
	}
	return openAIAny(r)
}

// openAIAny normalizes any OpenAI record, through encoding/json.
func openAIAny(r *envelope.Raw) (Fact, error) {
	return objectFact(r, func(m map[string]any) (string, error) {
		id, _ := m["id"].(string)
		if id == "" || r.Stream != "project_users" {
			return id, nil
		}
		// A user is a member of many projects: the membership is the object.
		pid, ok := projectOf(r.Request.Path)
		if !ok {
			return "", bad("project user listed outside a project: %q", r.Request.Path)
		}
		return pid + "/" + id, nil
	})
}

// objectFact normalizes a record of any vendor through encoding/json: a
// report row by its key, a log event by its id, a directory object by the
// id directoryID gives it.
func objectFact(r *envelope.Raw, directoryID func(map[string]any) (string, error)) (Fact, error) {
	m, err := decode(r.Data)
	if err != nil {
		return Fact{}, bad("data: %v", err)
	}
	data, err := canonical(m)
	if err != nil {
		return Fact{}, bad("data: %v", err)
	}
	spec, ok := stream.Lookup(r.Vendor, r.Stream)
	if !ok {
		return Fact{}, bad("unknown %s stream %q", r.Vendor, r.Stream)
	}
	switch spec.Kind {
	case stream.UsageReport, stream.CostReport, stream.ActivityReport:
		if r.Bucket == nil {
			return Fact{}, bad("%s record without a bucket", r.Stream)
		}
		if err := checkColumns(spec, data); err != nil {
			return Fact{}, err
		}
		key, err := ReportKey(spec, r.Bucket, r.GroupSet, m)
		if err != nil {
			return Fact{}, err
		}
		return Fact{Kind: event.Fact, Key: key, Data: data, Digest: event.ContentDigest(data)}, nil
	case stream.AuditLog:
		id, _ := m["id"].(string)
		if id == "" {
			return Fact{}, bad("%s event without an id", r.Stream)
		}
		key, err := mustCanonical(map[string]any{"id": id})
		if err != nil {
			return Fact{}, err
		}
		return Fact{Kind: event.Fact, Key: key, Data: data, Digest: event.ContentDigest(data)}, nil
	case stream.Directory:
		id, err := directoryID(m)
		if err != nil {
			return Fact{}, err
		}
		if id == "" {
			return Fact{}, bad("%s object without an id", r.Stream)
		}
		key, err := DirectoryKey(spec, id)
		if err != nil {
			return Fact{}, err
		}
		d, err := DirectoryDigest(data)
		if err != nil {
			return Fact{}, bad("data: %v", err)
		}
		return Fact{Kind: event.Identity, Key: key, Data: data, Digest: d}, nil
	}
	return Fact{}, bad("unknown %s stream %q", r.Vendor, r.Stream)
}

// checkColumns refuses a report row whose canonical columns cannot be
// read, so that it is deadlettered here rather than stop the sink.
func checkColumns(spec stream.Spec, data []byte) error {
	var err error
	switch spec.Kind {
	case stream.UsageReport:
		_, err = UsageColumns(spec.Vendor, data)
	case stream.CostReport:
		_, err = CostColumns(spec.Vendor, data)
	}
	if err != nil {
		return bad("%s row: %v", spec.Name, err)
	}
	return nil
}

// ReportKey returns the key of a report row of spec.
func ReportKey(spec stream.Spec, b *envelope.Bucket, groupSet []string, row map[string]any) ([]byte, error) {
	switch spec.Kind {
	case stream.UsageReport:
		return UsageKey(spec, b, groupSet, row)
	case stream.CostReport:
		return CostKey(spec, b, groupSet, row)
	case stream.ActivityReport:
		return ActivityKey(spec, b, groupSet, row)
	}
	return nil, bad("%q is not a report", spec.Name)
}

// UsageKey returns the key of a usage row: {endpoint, bucket_start,
// bucket_width, group_set, <each dimension>: value or ""}.
func UsageKey(spec stream.Spec, b *envelope.Bucket, groupSet []string, row map[string]any) ([]byte, error) {
	if !slices.IsSorted(groupSet) {
		return nil, bad("group set %v is not sorted", groupSet)
	}
	k := map[string]any{
		"endpoint":     spec.Endpoint,
		"bucket_start": event.Time(time.Unix(b.Start, 0)),
		"bucket_width": b.Width,
		"group_set":    nonNil(groupSet),
	}
	for _, dim := range groupSet {
		if _, clash := k[dim]; clash {
			return nil, bad("group dimension %q clashes with a key field", dim)
		}
		v, err := dimValue(row[dim])
		if err != nil {
			return nil, bad("dimension %s: %v", dim, err)
		}
		k[dim] = v
	}
	return mustCanonical(k)
}

// usageFlat is the fact of a usage row whose values are all flat and
// already canonical — every row OpenAI returns — read without a map or
// encoding/json. ok is false for any other row, and for any row the general
// path would refuse: that path decides, and the two agree byte for byte
// where both apply (FuzzUsageFlat).
func usageFlat(r *envelope.Raw) (Fact, bool) {
	spec, _ := stream.Lookup(r.Vendor, r.Stream)
	if r.Bucket == nil || spec.Kind != stream.UsageReport || !slices.IsSorted(r.GroupSet) {
		return Fact{}, false
	}
	var buf [16]jsonscan.Member
	row, ok := jsonscan.Flat(r.Data, buf[:0])
	if !ok {
		return Fact{}, false
	}
	if !readOpenAIUsage(row, nil) {
		return Fact{}, false // the general path reads its columns, or refuses the row
	}
	data, ok := jsonscan.AppendObject(make([]byte, 0, len(r.Data)), row)
	if !ok {
		return Fact{}, false
	}
	// The key: its fixed fields and the group dimensions, each list in
	// name order, merged.
	fixed := [4]string{"bucket_start", "bucket_width", "endpoint", "group_set"}
	vals := make([]byte, 0, 128) // the fixed fields' values, back to back
	var ends [4]int
	// event.Time's form, written in place: its characters need no escape.
	vals = append(time.Unix(r.Bucket.Start, 0).UTC().AppendFormat(append(vals, '"'), time.RFC3339Nano), '"')
	ends[0] = len(vals)
	for i, v := range []string{r.Bucket.Width, spec.Endpoint} {
		if vals, ok = event.AppendString(vals, v); !ok {
			return Fact{}, false
		}
		ends[i+1] = len(vals)
	}
	vals = append(vals, '[')
	for i, dim := range r.GroupSet {
		if i > 0 {
			vals = append(vals, ',')
		}
		if vals, ok = event.AppendString(vals, dim); !ok || !isPlainName(dim) || i > 0 && dim == r.GroupSet[i-1] {
			return Fact{}, false
		}
	}
	vals = append(vals, ']')
	ends[3] = len(vals)

	k := append(make([]byte, 0, 2*len(vals)+32*len(r.GroupSet)), '{')
	name := func(n string) {
		if len(k) > 1 {
			k = append(k, ',')
		}
		k = append(append(append(k, '"'), n...), '"', ':')
	}
	f, g := 0, 0
	for f < len(fixed) || g < len(r.GroupSet) {
		if g == len(r.GroupSet) || f < len(fixed) && fixed[f] < r.GroupSet[g] {
			lo := 0
			if f > 0 {
				lo = ends[f-1]
			}
			name(fixed[f])
			k = append(k, vals[lo:ends[f]]...)
			f++
			continue
		}
		dim := r.GroupSet[g]
		if f < len(fixed) && fixed[f] == dim {
			return Fact{}, false // a dimension named like a key field
		}
		name(dim)
		var v []byte
		for _, m := range row {
			if string(m.Name) == dim {
				v = m.Value
			}
		}
		switch {
		case v == nil || v[0] == 'n': // missing or null
			k = append(k, '"', '"')
		case v[0] == '"':
			k = append(k, v...)
		default: // a number or boolean, as text
			k = append(append(append(k, '"'), v...), '"')
		}
		g++
	}
	k = append(k, '}')
	return Fact{Kind: event.Fact, Key: k, Data: data, Digest: event.ContentDigest(data)}, true
}

// isPlainName reports whether a JSON name's canonical form is its bytes in
// quotes, as jsonscan.Member requires: printable ASCII but '"' and '\\'.
func isPlainName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// CostKey returns the key of a cost row: {bucket_start, group_set, <each
// dimension of the report's primary group set>} — for OpenAI project_id
// and line_item, for Anthropic description and workspace_id.
func CostKey(spec stream.Spec, b *envelope.Bucket, groupSet []string, row map[string]any) ([]byte, error) {
	k := map[string]any{"bucket_start": event.Time(time.Unix(b.Start, 0)), "group_set": nonNil(groupSet)}
	for _, dim := range spec.GroupSet {
		v, err := dimValue(row[dim])
		if err != nil {
			return nil, bad("dimension %s: %v", dim, err)
		}
		k[dim] = v
	}
	return mustCanonical(k)
}

// ManifestKey returns the key of a bucket's manifest of report s:
// {endpoint, group_set, bucket_start}.
func ManifestKey(s stream.Spec, b *envelope.Bucket, groupSet []string) ([]byte, error) {
	return mustCanonical(map[string]any{
		"endpoint":     s.Endpoint,
		"group_set":    nonNil(groupSet),
		"bucket_start": event.Time(time.Unix(b.Start, 0)),
	})
}

// DirectoryKey returns the key of a directory object: {object, id}.
func DirectoryKey(spec stream.Spec, id string) ([]byte, error) {
	if spec.Kind != stream.Directory {
		return nil, bad("%q is not a directory stream", spec.Name)
	}
	return mustCanonical(map[string]any{"object": spec.Object, "id": id})
}

// projectOf returns the project id of a /v1/organization/projects/{id}/…
// path.
func projectOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v1/organization/projects/")
	if !ok {
		return "", false
	}
	pid, _, ok := strings.Cut(rest, "/")
	return pid, ok && pid != ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func mustCanonical(v any) ([]byte, error) {
	b, err := canonical(v)
	if err != nil {
		return nil, fmt.Errorf("normalize: key: %w", err)
	}
	return b, nil
}
