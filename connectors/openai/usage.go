package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

const day = poll.Day

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
	// Spec is the report in the catalogue: a usage endpoint, grouped by its
	// primary group set (every dimension the endpoint supports), or the
	// costs report.
	Spec stream.Spec
	// TrailingDays is how many settled days are re-read on every poll.
	// Default 3, as vendors restate recent buckets.
	TrailingDays int
	// Limit is the buckets per page. Default 31, the vendor's maximum for 1d.
	Limit int
	// KeyGroupingFloor is the earliest time the vendor groups by
	// api_key_id. Default DefaultKeyGroupingFloor.
	KeyGroupingFloor time.Time
}

// DefaultKeyGroupingFloor is where OpenAI's api_key_id grouping history
// begins (vendor-api-notes.md B1): 2025-12-06T00:00:00Z.
var DefaultKeyGroupingFloor = time.Unix(1764979200, 0).UTC()

// Name returns the spec's stream name.
func (u *Usage) Name() string { return u.Spec.Name }

func (u *Usage) costs() bool { return u.Spec.Kind == stream.CostReport }

func (u *Usage) path() string {
	if u.costs() {
		return "/v1/organization/costs"
	}
	return "/v1/organization/usage/" + u.Spec.Endpoint
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
	w, cur := poll.ReportWindow(req, trailing)
	start, end := w.Start, w.End
	floor := u.KeyGroupingFloor
	if floor.IsZero() {
		floor = DefaultKeyGroupingFloor
	}
	if slices.Contains(u.Spec.GroupSet, "api_key_id") && start.Before(floor) {
		// The vendor refuses api_key_id before its floor: that part of the
		// window is read without it, as a group set of its own that never
		// mixes into the totals of the primary one.
		without := slices.DeleteFunc(slices.Clone(u.Spec.GroupSet), func(d string) bool { return d == "api_key_id" })
		cut := floor
		if end.Before(cut) {
			cut = end
		}
		var err error
		if cur, err = u.read(ctx, req, cur, w, start, cut, without, limit, emit); err != nil {
			return err
		}
		if !floor.Before(end) {
			return nil
		}
		start = floor
	}
	_, err := u.read(ctx, req, cur, w, start, end, u.Spec.GroupSet, limit, emit)
	return err
}

// read reads buckets [start, end) grouped by groupBy, page by page,
// publishing the buckets that changed, and returns the cursor after them.
func (u *Usage) read(ctx context.Context, req poll.Request, cur stream.Cursor, w poll.Window, start, end time.Time, groupBy []string,
	limit int, emit func(poll.Page) error) (stream.Cursor, error) {
	path := u.path()
	q := url.Values{
		"start_time":   {strconv.FormatInt(start.Unix(), 10)},
		"end_time":     {strconv.FormatInt(end.Unix(), 10)},
		"bucket_width": {"1d"},
		"limit":        {strconv.Itoa(limit)},
		"group_by[]":   groupBy,
	}
	report := poll.Report{Spec: u.Spec, Tenant: req.Tenant, Window: w,
		GroupSet: slices.Sorted(slices.Values(groupBy))}
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
		buckets := make([]poll.Bucket, len(p.Data))
		for i, b := range p.Data {
			buckets[i] = poll.Bucket{Start: time.Unix(b.StartTime, 0), End: time.Unix(b.EndTime, 0), Rows: b.Results}
		}
		report.Request = envelope.Request{Path: path, Query: q.Encode()}
		out := report.Page(cur, fetched, buckets)
		out.Observed = control.Observed{Admin: !u.costs(), Costs: u.costs()}
		for _, r := range out.Records {
			if r.Data != nil && hasUser(r.Data) {
				out.Observed.PerUserBreakdown = true
			}
		}
		if err := emit(out); err != nil {
			return cur, err
		}
		cur = out.Cursor
		if !p.HasMore || p.NextPage == "" {
			return cur, nil
		}
		q.Set("page", p.NextPage)
	}
}

func hasUser(result json.RawMessage) bool {
	var r struct {
		UserID *string `json:"user_id"`
	}
	return json.Unmarshal(result, &r) == nil && r.UserID != nil && *r.UserID != ""
}
