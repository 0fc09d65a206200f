package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Report is a daily report stream — the messages usage report grouped by
// its spec's group set, or the cost report — read as every vendor's report
// is read (poll.ReportWindow, poll.Report): the backfill from the cursor's
// origin, then the trailing window on every poll, publishing only buckets
// that changed.
type Report struct {
	Client *Client
	Spec   stream.Spec
	// TrailingDays is how many settled days are re-read on every poll.
	// Default 3: the vendor restates about a day late.
	TrailingDays int
	// Limit is the buckets per page. Default 7, as grouped reports that ask
	// for 31 dense days are refused as too large; a 400 halves it before
	// giving up (vendor-api-notes.md C1).
	Limit int
}

// Name returns the spec's stream name.
func (r *Report) Name() string { return r.Spec.Name }

func (r *Report) path() string {
	if r.Spec.Kind == stream.CostReport {
		return "/v1/organizations/cost_report"
	}
	return "/v1/organizations/usage_report/" + r.Spec.Endpoint
}

type reportBucket struct {
	StartingAt time.Time         `json:"starting_at"`
	EndingAt   time.Time         `json:"ending_at"`
	Results    []json.RawMessage `json:"results"`
}

type reportPage struct {
	Data     []reportBucket `json:"data"`
	HasMore  bool           `json:"has_more"`
	NextPage *string        `json:"next_page"`
}

// Poll reads the window of req.Cursor page by page.
func (r *Report) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	trailing, limit := r.TrailingDays, r.Limit
	if trailing == 0 {
		trailing = 3
	}
	if limit == 0 {
		limit = 7
	}
	w, cur := poll.ReportWindow(req, trailing)
	path := r.path()
	q := url.Values{
		"starting_at":  {w.Start.Format(time.RFC3339)},
		"ending_at":    {w.End.Format(time.RFC3339)},
		"bucket_width": {"1d"},
		"group_by[]":   r.Spec.GroupSet,
	}
	report := poll.Report{Spec: r.Spec, Tenant: req.Tenant, Window: w, GroupSet: r.Spec.GroupSet}
	for page := 0; ; page++ {
		q.Set("limit", strconv.Itoa(limit))
		body, err := r.Client.get(ctx, req.Key, path, q)
		var api *APIError
		if errors.As(err, &api) && api.Status == http.StatusBadRequest && limit > 1 {
			limit /= 2 // too large a response: fewer buckets a page
			page--
			continue
		}
		if err != nil {
			return fmt.Errorf("poll %s page %d: %w", r.Name(), page, err)
		}
		fetched := req.Now().UTC()
		var p reportPage
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("poll %s page %d: decode: %w", r.Name(), page, err)
		}
		buckets := make([]poll.Bucket, len(p.Data))
		for i, b := range p.Data {
			buckets[i] = poll.Bucket{Start: b.StartingAt, End: b.EndingAt, Rows: b.Results}
		}
		report.Request = envelope.Request{Path: path, Query: q.Encode()}
		out := report.Page(cur, fetched, buckets)
		out.Observed = r.observed(out.Records)
		if err := emit(out); err != nil {
			return err
		}
		cur = out.Cursor
		if !p.HasMore || p.NextPage == nil || *p.NextPage == "" {
			return nil
		}
		q.Set("page", *p.NextPage)
	}
}

// observed is what a page proves of the key: the report answered, and
// usage by account named accounts.
func (r *Report) observed(recs []*envelope.Raw) control.Observed {
	if r.Spec.Kind == stream.CostReport {
		return control.Observed{Costs: true}
	}
	o := control.Observed{Admin: true}
	if slices.Contains(r.Spec.GroupSet, "account_id") {
		for _, rec := range recs {
			o.PerUserBreakdown = o.PerUserBreakdown || hasAccount(rec.Data)
		}
	}
	return o
}

func hasAccount(row json.RawMessage) bool {
	var v struct {
		AccountID *string `json:"account_id"`
	}
	return row != nil && json.Unmarshal(row, &v) == nil && v.AccountID != nil && *v.AccountID != ""
}

// ClaudeCode is the Claude Code report: one request per UTC day (the
// vendor serves a single day per call), each day's records published as
// that day's bucket, read like the other reports.
type ClaudeCode struct {
	Client       *Client
	Spec         stream.Spec
	TrailingDays int
	// Limit is the records per page. Default 1000, the vendor's maximum.
	Limit int
}

// Name returns the spec's stream name.
func (c *ClaudeCode) Name() string { return c.Spec.Name }

type claudeCodePage struct {
	Data     []json.RawMessage `json:"data"`
	HasMore  bool              `json:"has_more"`
	NextPage *string           `json:"next_page"`
}

// Poll reads each day of the window, every page of a day before publishing
// it.
func (c *ClaudeCode) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	trailing, limit := c.TrailingDays, c.Limit
	if trailing == 0 {
		trailing = 3
	}
	if limit == 0 {
		limit = 1000
	}
	w, cur := poll.ReportWindow(req, trailing)
	const path = "/v1/organizations/usage_report/claude_code"
	report := poll.Report{Spec: c.Spec, Tenant: req.Tenant, Window: w, GroupSet: c.Spec.GroupSet}
	for day := w.Start; day.Before(w.End); day = day.Add(poll.Day) {
		q := url.Values{"starting_at": {day.Format(time.DateOnly)}, "limit": {strconv.Itoa(limit)}}
		report.Request = envelope.Request{Path: path, Query: q.Encode()}
		var rows []json.RawMessage
		for page := 0; ; page++ {
			body, err := c.Client.get(ctx, req.Key, path, q)
			if err != nil {
				return fmt.Errorf("poll %s %s page %d: %w", c.Name(), day.Format(time.DateOnly), page, err)
			}
			var p claudeCodePage
			if err := json.Unmarshal(body, &p); err != nil {
				return fmt.Errorf("poll %s %s page %d: decode: %w", c.Name(), day.Format(time.DateOnly), page, err)
			}
			rows = append(rows, p.Data...)
			if !p.HasMore || p.NextPage == nil || *p.NextPage == "" {
				break
			}
			q.Set("page", *p.NextPage)
		}
		out := report.Page(cur, req.Now().UTC(), []poll.Bucket{{Start: day, End: day.Add(poll.Day), Rows: rows}})
		out.Observed = control.Observed{ClaudeCode: true}
		if err := emit(out); err != nil {
			return err
		}
		cur = out.Cursor
	}
	return nil
}
