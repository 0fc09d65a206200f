package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
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

// Poll walks the list.
func (l *List) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	w := l.Client.walker(l.Spec, req, emit)
	after := w.Begin()
	err := l.Client.lists(req).Walk(ctx, l.Path, l.Query, l.Limit, after, func(items []json.RawMessage, last string, more bool, r envelope.Request) error {
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
	lists := m.Client.lists(req)
	ids, err := lists.IDs(ctx, workspaces, url.Values{"include_archived": {"true"}}, m.Limit)
	if err != nil {
		return fmt.Errorf("poll %s: list workspaces: %w", m.Name(), err)
	}
	err = lists.WalkEach(ctx, m.Client.walker(m.Spec, req, emit), ids, workspaces,
		func(ws string) string { return workspaces + "/" + url.PathEscape(ws) + "/members" }, nil, m.Limit)
	if err != nil {
		return fmt.Errorf("poll %s: workspace %w", m.Name(), err)
	}
	return nil
}

// lists pages through the organization's lists with req's key, up to
// 1,000 objects a page (the vendor's maximum).
func (c *Client) lists(req poll.Request) poll.Lists {
	return poll.Lists{AfterParam: "after_id", Limit: 1000, Get: func(ctx context.Context, path string, q url.Values) ([]byte, error) {
		return c.get(ctx, req.Key, path, q)
	}}
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
