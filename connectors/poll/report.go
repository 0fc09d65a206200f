package poll

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"time"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/settle"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Day is the width of the daily report buckets every vendor is read in.
const Day = 24 * time.Hour

// Window is the span a daily report stream reads on one poll, the same for
// every vendor: from the cursor's window start — the backfill's progress —
// or the trailing window, whichever is earlier (never before the origin),
// to the end of today. End is frozen for the whole read: a moving end
// invalidates the vendor's page tokens.
type Window struct {
	Start, End time.Time
	// Trail is the start of the trailing window: buckets from there on are
	// published only when their rows changed since last published.
	Trail time.Time
}

// ReportWindow returns the window of this poll and the cursor to start
// from, trailingDays settled days re-read on every poll (vendors restate
// recent buckets).
func ReportWindow(req Request, trailingDays int) (Window, stream.Cursor) {
	today := req.Now().UTC().Truncate(Day)
	w := Window{End: today.Add(Day), Trail: today.Add(-time.Duration(trailingDays) * Day)}
	cur := req.Cursor
	if cur.WindowStart.IsZero() {
		cur.WindowStart, cur.State = cur.Origin, "backfill"
	}
	w.Start = cur.WindowStart
	if w.Trail.Before(w.Start) {
		w.Start = w.Trail
	}
	if w.Start.Before(cur.Origin) {
		w.Start = cur.Origin
	}
	return w, cur
}

// Bucket is one report bucket as the vendor returned it.
type Bucket struct {
	Start, End time.Time
	Rows       []json.RawMessage
}

// Report turns fetched report buckets into raw records and the cursor
// after them. A bucket of the trailing window is published only when the
// digest of its rows differs from the one last published — so unchanged
// data publishes nothing and a restated or growing bucket publishes that
// bucket alone — and once more when it settles, so that its rows get
// chained even if they did not change.
type Report struct {
	Spec    stream.Spec
	Tenant  string
	Window  Window
	Request envelope.Request
	// GroupSet is the sorted dimensions the rows are grouped by.
	GroupSet []string
}

// Page returns the records of buckets fetched at fetched and the cursor
// after them, from cur.
func (r Report) Page(cur stream.Cursor, fetched time.Time, buckets []Bucket) Page {
	next := cur
	next.Digests = maps.Clone(cur.Digests)
	if next.Digests == nil {
		next.Digests = map[int64]string{}
	}
	var out Page
	for _, b := range buckets {
		start := b.Start.UTC()
		d := digest(b.Rows)
		if settle.Settled(b.End, fetched, r.Spec.Grace) {
			d += "/settled"
		}
		if !start.Before(r.Window.Trail) {
			if next.Digests[start.Unix()] == d {
				continue
			}
			next.Digests[start.Unix()] = d
		}
		if end := start.Add(Day); end.After(next.WindowStart) {
			next.WindowStart = end
		}
		out.Records = append(out.Records, r.records(fetched, start.Unix(), b.End.Unix(), b.Rows)...)
	}
	maps.DeleteFunc(next.Digests, func(start int64, _ string) bool { return start < r.Window.Trail.Unix() })
	if !next.WindowStart.Before(r.Window.Trail) {
		next.State = "live"
	}
	next.WindowEnd = r.Window.End
	out.Cursor = next
	return out
}

// records returns one raw record per row of a bucket, or one record without
// data for an empty bucket: its manifest still proves it was read.
func (r Report) records(fetched time.Time, start, end int64, rows []json.RawMessage) []*envelope.Raw {
	rec := func(i int, data json.RawMessage) *envelope.Raw {
		return &envelope.Raw{
			V: envelope.Version, Tenant: r.Tenant, Vendor: r.Spec.Vendor, Stream: r.Spec.Name, Request: r.Request,
			FetchedAt: fetched, Salt: envelope.NewSalt(), GroupSet: r.GroupSet,
			Bucket: &envelope.Bucket{Start: start, End: end, Width: "1d", Rows: len(rows), Row: i},
			Data:   data,
		}
	}
	if len(rows) == 0 {
		return []*envelope.Raw{rec(0, nil)}
	}
	out := make([]*envelope.Raw, len(rows))
	for i, row := range rows {
		out[i] = rec(i, row)
	}
	return out
}

// digest identifies a bucket's rows as received.
func digest(rows []json.RawMessage) string {
	h := sha256.New()
	for _, r := range rows {
		var b bytes.Buffer
		if json.Compact(&b, r) != nil {
			b.Write(r)
		}
		h.Write(b.Bytes())
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}
