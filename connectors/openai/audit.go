package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Audit is the audit-log stream. The vendor lists events newest first, so
// a poll reads one window [high-water, now) to its end, page by page, and
// only a window read completely moves the high-water mark: a poll cut
// short resumes the same window after the last event committed.
type Audit struct {
	Client *Client
	Spec   stream.Spec
	// Limit is the events per page. Default 100, the vendor's maximum.
	Limit int
}

// Name returns the spec's stream name.
func (a *Audit) Name() string { return a.Spec.Name }

// Poll reads the current window; see [Audit].
func (a *Audit) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	limit := a.Limit
	if limit == 0 {
		limit = 100
	}
	cur := req.Cursor
	if cur.State != "reading" {
		start := cur.WindowEnd
		if start.IsZero() {
			start = cur.Origin
		}
		cur.WindowStart, cur.WindowEnd, cur.AfterID, cur.State = start, req.Now().UTC().Truncate(time.Second), "", "reading"
	}
	const path = "/v1/organization/audit_logs"
	for page := 0; ; page++ {
		q := url.Values{
			"effective_at[gte]": {strconv.FormatInt(cur.WindowStart.Unix(), 10)},
			"effective_at[lt]":  {strconv.FormatInt(cur.WindowEnd.Unix(), 10)},
			"limit":             {strconv.Itoa(limit)},
		}
		if cur.AfterID != "" {
			q.Set("after", cur.AfterID)
		}
		body, err := a.Client.get(ctx, req.Key, path, q)
		if err != nil {
			return fmt.Errorf("poll %s page %d: %w", a.Name(), page, err)
		}
		fetched := req.Now().UTC()
		var p listPage
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("poll %s page %d: decode: %w", a.Name(), page, err)
		}
		out := poll.Page{Observed: control.Observed{AuditLogs: len(p.Data) > 0}}
		for _, item := range p.Data {
			out.Records = append(out.Records, &envelope.Raw{V: envelope.Version, Tenant: req.Tenant, Vendor: Vendor,
				Stream: a.Name(), Request: envelope.Request{Path: path, Query: q.Encode()}, FetchedAt: fetched,
				Salt: envelope.NewSalt(), Data: item})
		}
		next := cur
		more := p.HasMore && p.LastID != nil && *p.LastID != cur.AfterID
		if more {
			next.AfterID = *p.LastID
		} else {
			// The window is read whole: its end is the new high-water mark.
			next.State, next.AfterID = "idle", ""
		}
		out.Cursor = next
		if err := emit(out); err != nil {
			return err
		}
		cur = next
		if !more {
			return nil
		}
	}
}
