package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// listPaths maps each directory object to the list that holds it; workspace
// members are listed per workspace ([Members]).
var listPaths = map[string]struct {
	path  string
	query url.Values
}{
	"user":      {"/v1/organizations/users", nil},
	"workspace": {"/v1/organizations/workspaces", url.Values{"include_archived": {"true"}}},
	"api_key":   {"/v1/organizations/api_keys", nil},
	"invite":    {"/v1/organizations/invites", nil},
}

// List is a directory stream: a complete walk of one entity list per poll,
// one snapshot (poll.Walker).
type List struct {
	Client *Client
	Spec   stream.Spec
	// Path is the list path, e.g. "/v1/organizations/users".
	Path string
	// Query holds extra parameters sent on every page.
	Query url.Values
	// Limit is the objects per page. Default 1000, the vendor's maximum.
	Limit int
}

// Name returns the spec's stream name.
func (l *List) Name() string { return l.Spec.Name }

type listPage struct {
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
	LastID  *string           `json:"last_id"`
}

// Poll walks the list.
func (l *List) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	w := l.Client.walker(l.Spec, req, emit)
	after := w.Begin()
	err := l.Client.walk(ctx, req, l.Path, l.Query, l.Limit, after, func(items []json.RawMessage, last string, more bool, r envelope.Request) error {
		return w.Page(items, last, r, !more)
	})
	if err != nil {
		return fmt.Errorf("poll %s: %w", l.Name(), err)
	}
	return nil
}

// Members walks the members of every workspace as one snapshot; its
// cursor's AfterID is "<workspace id>/<last user id>".
type Members struct {
	Client *Client
	Spec   stream.Spec
	Limit  int
}

// Name returns the spec's stream name.
func (m *Members) Name() string { return m.Spec.Name }

// Poll walks the members of every workspace in list order.
func (m *Members) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	const workspaces = "/v1/organizations/workspaces"
	var ids []string
	err := m.Client.walk(ctx, req, workspaces, url.Values{"include_archived": {"true"}}, m.Limit, "",
		func(items []json.RawMessage, _ string, _ bool, _ envelope.Request) error {
			for _, it := range items {
				ids = append(ids, objectID(it))
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("poll %s: list workspaces: %w", m.Name(), err)
	}
	w := m.Client.walker(m.Spec, req, emit)
	resumeIn, resumeAfter, _ := strings.Cut(w.Begin(), "/")
	skipping := resumeIn != ""
	for i, ws := range ids {
		after := ""
		if skipping {
			if ws != resumeIn {
				continue
			}
			skipping, after = false, resumeAfter
		}
		last := i == len(ids)-1
		err := m.Client.walk(ctx, req, workspaces+"/"+url.PathEscape(ws)+"/members", nil, m.Limit, after,
			func(items []json.RawMessage, lastID string, more bool, r envelope.Request) error {
				pos := ws + "/" + lastID
				if !more && !last {
					pos = ids[i+1] + "/"
				}
				return w.Page(items, pos, r, !more && last)
			})
		if err != nil {
			return fmt.Errorf("poll %s: workspace %s: %w", m.Name(), ws, err)
		}
	}
	if len(ids) == 0 || skipping {
		return w.Page(nil, "", envelope.Request{Path: workspaces}, true)
	}
	return nil
}

// walk pages through a list from after, calling fn per page.
func (c *Client) walk(ctx context.Context, req poll.Request, path string, extra url.Values, limit int, after string,
	fn func(items []json.RawMessage, last string, more bool, r envelope.Request) error) error {
	if limit == 0 {
		limit = 1000
	}
	for {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		for k, v := range extra {
			q[k] = v
		}
		if after != "" {
			q.Set("after_id", after)
		}
		body, err := c.get(ctx, req.Key, path, q)
		if err != nil {
			return err
		}
		var p listPage
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		last := after
		if p.LastID != nil {
			last = *p.LastID
		}
		more := p.HasMore && last != after
		if err := fn(p.Data, last, more, envelope.Request{Path: path, Query: q.Encode()}); err != nil {
			return err
		}
		if !more {
			return nil
		}
		after = last
	}
}

// walker returns the walker of a directory stream, noting a readable
// workspace list as the workspaces capability.
func (c *Client) walker(s stream.Spec, req poll.Request, emit func(poll.Page) error) *poll.Walker {
	w := &poll.Walker{Spec: s, Req: req, Emit: emit}
	if s.Object == "workspace" {
		w.Observe = func(_ json.RawMessage, o *control.Observed) { o.Workspaces = true }
	}
	return w
}

func objectID(data json.RawMessage) string {
	var o struct {
		ID string `json:"id"`
	}
	json.Unmarshal(data, &o) // a missing id reads as ""
	return o.ID
}

// Streams returns the Anthropic streams Ogma polls, in the catalogue's
// order, with their cadences: reports every usageEvery, the directory every
// directoryEvery.
func Streams(c *Client, usageEvery, directoryEvery time.Duration) []poll.Scheduled {
	var out []poll.Scheduled
	for _, s := range stream.Of(stream.Anthropic) {
		switch {
		case s.Kind == stream.UsageReport || s.Kind == stream.CostReport:
			out = append(out, poll.Scheduled{Stream: &Report{Client: c, Spec: s}, Every: usageEvery})
		case s.Kind == stream.ActivityReport:
			out = append(out, poll.Scheduled{Stream: &ClaudeCode{Client: c, Spec: s}, Every: usageEvery})
		case s.Object == "workspace_member":
			out = append(out, poll.Scheduled{Stream: &Members{Client: c, Spec: s}, Every: directoryEvery})
		case s.Kind == stream.Directory:
			l := listPaths[s.Object]
			out = append(out, poll.Scheduled{Stream: &List{Client: c, Spec: s, Path: l.path, Query: l.query}, Every: directoryEvery})
		}
	}
	return out
}
