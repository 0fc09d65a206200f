package openai

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/settle"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

const day = 24 * time.Hour

// Usage is the stream of one report endpoint in daily buckets — a usage
// endpoint (usage/<Endpoint>) or the costs report — grouped by the
// endpoint's primary group set.
//
// The first poll reads from the cursor's origin: the backfill. Every poll
// then re-reads the trailing window — the last TrailingDays settled days and
// today's open bucket — and publishes a bucket only when the digest of its
// rows differs from the one last published, so unchanged data publishes
// nothing and a restated or growing bucket publishes that bucket alone. A
// bucket is also published when it settles ([settle.Settled]).
type Usage struct {
	Client *Client
	// Endpoint is the usage endpoint, e.g. "completions".
	Endpoint string
	// GroupBy is the primary group set: every dimension the endpoint
	// supports, sorted.
	GroupBy []string
	// TrailingDays is how many settled days are re-read on every poll.
	// Default 3, as vendors restate recent buckets.
	TrailingDays int
	// Limit is the buckets per page. Default 31, the vendor's maximum for 1d.
	Limit int
	// Costs makes this the costs report (/v1/organization/costs, stream
	// "costs") instead of a usage endpoint.
	Costs bool
	// KeyGroupingFloor is the earliest time the vendor groups by
	// api_key_id. Default DefaultKeyGroupingFloor.
	KeyGroupingFloor time.Time
}

// DefaultKeyGroupingFloor is where OpenAI's api_key_id grouping history
// begins (vendor-api-notes.md B1): 2025-12-06T00:00:00Z.
var DefaultKeyGroupingFloor = time.Unix(1764979200, 0).UTC()

// Name returns "usage.<endpoint>", or "costs".
func (u *Usage) Name() string {
	if u.Costs {
		return "costs"
	}
	return "usage." + u.Endpoint
}

func (u *Usage) path() string {
	if u.Costs {
		return "/v1/organization/costs"
	}
	return "/v1/organization/usage/" + u.Endpoint
}

type usageBucket struct {
	StartTime int64             `json:"start_time"`
	EndTime   int64             `json:"end_time"`
	Results   []json.RawMessage `json:"results"`
}

type usagePage struct {
	Data     []usageBucket `json:"data"`
	HasMore  bool          `json:"has_more"`
	NextPage string        `json:"next_page"`
}

// Poll reads the window of req.Cursor page by page; see [Usage].
func (u *Usage) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	trailing, limit := u.TrailingDays, u.Limit
	if trailing == 0 {
		trailing = 3
	}
	if limit == 0 {
		limit = 31
	}
	now := req.Now().UTC()
	today := now.Truncate(day)
	trailStart := today.Add(-time.Duration(trailing) * day)
	cur := req.Cursor
	if cur.WindowStart.IsZero() {
		cur.WindowStart, cur.State = cur.Origin, "backfill"
	}
	start := cur.WindowStart
	if trailStart.Before(start) {
		start = trailStart
	}
	if start.Before(cur.Origin) {
		start = cur.Origin
	}
	// end_time is frozen for the whole read: a moving end invalidates the
	// vendor's page tokens.
	end := today.Add(day)
	floor := u.KeyGroupingFloor
	if floor.IsZero() {
		floor = DefaultKeyGroupingFloor
	}
	if slices.Contains(u.GroupBy, "api_key_id") && start.Before(floor) {
		// The vendor refuses api_key_id before its floor: that part of the
		// window is read without it, as a group set of its own that never
		// mixes into the totals of the primary one.
		without := slices.DeleteFunc(slices.Clone(u.GroupBy), func(d string) bool { return d == "api_key_id" })
		cut := floor
		if end.Before(cut) {
			cut = end
		}
		var err error
		if cur, err = u.read(ctx, req, cur, start, cut, without, limit, trailStart, emit); err != nil {
			return err
		}
		if !floor.Before(end) {
			return nil
		}
		start = floor
	}
	_, err := u.read(ctx, req, cur, start, end, u.GroupBy, limit, trailStart, emit)
	return err
}

// read reads buckets [start, end) grouped by groupBy, page by page,
// publishing the buckets that changed, and returns the cursor after them.
func (u *Usage) read(ctx context.Context, req poll.Request, cur stream.Cursor, start, end time.Time, groupBy []string,
	limit int, trailStart time.Time, emit func(poll.Page) error) (stream.Cursor, error) {
	path := u.path()
	q := url.Values{
		"start_time":   {strconv.FormatInt(start.Unix(), 10)},
		"end_time":     {strconv.FormatInt(end.Unix(), 10)},
		"bucket_width": {"1d"},
		"limit":        {strconv.Itoa(limit)},
		"group_by[]":   groupBy,
	}
	groupSet := slices.Sorted(slices.Values(groupBy))
	for page := 0; ; page++ {
		body, err := u.Client.get(ctx, req.Key, path, q)
		if err != nil {
			return cur, fmt.Errorf("poll %s page %d: %w", u.Name(), page, err)
		}
		fetched := req.Now().UTC()
		var p usagePage
		if err := json.Unmarshal(body, &p); err != nil {
			return cur, fmt.Errorf("poll %s page %d: decode: %w", u.Name(), page, err)
		}
		next := cur
		next.Digests = maps.Clone(cur.Digests)
		if next.Digests == nil {
			next.Digests = map[int64]string{}
		}
		out := poll.Page{Observed: control.Observed{Admin: !u.Costs, Costs: u.Costs}}
		request := envelope.Request{Path: path, Query: q.Encode()}
		for _, b := range p.Data {
			bstart := time.Unix(b.StartTime, 0).UTC()
			d := digest(b.Results)
			if settle.Settled(time.Unix(b.EndTime, 0), fetched, stream.Must(stream.OpenAI, u.Name()).Grace) {
				// A bucket is published once more when it settles, so that
				// its rows get chained even if they did not change.
				d += "/settled"
			}
			if !bstart.Before(trailStart) {
				if next.Digests[b.StartTime] == d {
					continue
				}
				next.Digests[b.StartTime] = d
			}
			if bend := bstart.Add(day); bend.After(next.WindowStart) {
				next.WindowStart = bend
			}
			out.Records = append(out.Records, bucketRecords(req.Tenant, u.Name(), request, fetched, groupSet, b.StartTime, b.EndTime, b.Results)...)
			for _, r := range b.Results {
				if hasUser(r) {
					out.Observed.PerUserBreakdown = true
				}
			}
		}
		maps.DeleteFunc(next.Digests, func(start int64, _ string) bool { return start < trailStart.Unix() })
		if !next.WindowStart.Before(trailStart) {
			next.State = "live"
		}
		next.WindowEnd = end
		out.Cursor = next
		if err := emit(out); err != nil {
			return cur, err
		}
		cur = next
		if !p.HasMore || p.NextPage == "" {
			return cur, nil
		}
		q.Set("page", p.NextPage)
	}
}

// digest identifies a bucket's rows as received.
func digest(results []json.RawMessage) string {
	h := sha256.New()
	for _, r := range results {
		var b bytes.Buffer
		if json.Compact(&b, r) != nil {
			b.Write(r)
		}
		h.Write(b.Bytes())
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hasUser(result json.RawMessage) bool {
	var r struct {
		UserID *string `json:"user_id"`
	}
	return json.Unmarshal(result, &r) == nil && r.UserID != nil && *r.UserID != ""
}

// bucketRecords returns one raw record per row of a bucket, or one record
// without data for an empty bucket.
func bucketRecords(tenant, stream string, req envelope.Request, fetched time.Time, groupSet []string, start, end int64, rows []json.RawMessage) []*envelope.Raw {
	rec := func(i int, data json.RawMessage) *envelope.Raw {
		return &envelope.Raw{
			V: envelope.Version, Tenant: tenant, Vendor: Vendor, Stream: stream, Request: req,
			FetchedAt: fetched, Salt: envelope.NewSalt(), GroupSet: groupSet,
			Bucket: &envelope.Bucket{Start: start, End: end, Width: "1d", Rows: len(rows), Row: i},
			Data:   data,
		}
	}
	if len(rows) == 0 {
		return []*envelope.Raw{rec(0, nil)}
	}
	out := make([]*envelope.Raw, len(rows))
	for i, r := range rows {
		out[i] = rec(i, r)
	}
	return out
}
