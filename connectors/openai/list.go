package openai

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

// List is a directory stream: a complete walk of one entity list per poll
// (users, projects), bracketed as one snapshot so that an object missing
// from a complete walk can be told from one not yet read. A walk cut short
// resumes after the last committed object of the same snapshot.
type List struct {
	Client *Client
	Spec   stream.Spec
	// Path is the list path, e.g. "/v1/organization/users".
	Path string
	// Query holds extra parameters sent on every page.
	Query url.Values
	// Limit is the objects per page. Default 100, the vendor's maximum.
	Limit int
}

// Name returns the spec's stream name.
func (l *List) Name() string { return l.Spec.Name }

type listPage struct {
	Data    []json.RawMessage `json:"data"`
	LastID  *string           `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// Poll walks the list; see [List].
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

// ProjectList walks one list of every project — its API keys, users or
// service accounts — as one snapshot. Its cursor's AfterID is
// "<project id>/<last object id>".
type ProjectList struct {
	Client *Client
	Spec   stream.Spec
	// Sub is the list under each project: "api_keys", "users",
	// "service_accounts".
	Sub string
	// Query holds extra parameters for every page.
	Query url.Values
	Limit int
}

// Name returns the spec's stream name.
func (p *ProjectList) Name() string { return p.Spec.Name }

// Poll walks the list of every project in list order.
func (p *ProjectList) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	const projects = "/v1/organization/projects"
	lists := p.Client.lists(req)
	ids, err := lists.IDs(ctx, projects, url.Values{"include_archived": {"true"}}, p.Limit)
	if err != nil {
		return fmt.Errorf("poll %s: list projects: %w", p.Name(), err)
	}
	err = lists.WalkEach(ctx, p.Client.walker(p.Spec, req, emit), ids, projects,
		func(pid string) string { return projects + "/" + url.PathEscape(pid) + "/" + p.Sub }, p.Query, p.Limit)
	if err != nil {
		return fmt.Errorf("poll %s: project %w", p.Name(), err)
	}
	return nil
}

// lists pages through the organization's lists with req's key.
func (c *Client) lists(req poll.Request) poll.Lists {
	return poll.Lists{AfterParam: "after", Limit: 100, Get: func(ctx context.Context, path string, q url.Values) ([]byte, error) {
		return c.get(ctx, req.Key, path, q)
	}}
}

// walker returns the walker of a directory stream, noting a user with an
// email as the project_users capability.
func (c *Client) walker(s stream.Spec, req poll.Request, emit func(poll.Page) error) *poll.Walker {
	w := &poll.Walker{Spec: s, Req: req, Emit: emit}
	if s.Object == "user" {
		w.Observe = func(item json.RawMessage, o *control.Observed) { o.ProjectUsers = o.ProjectUsers || hasEmail(item) }
	}
	return w
}

func hasEmail(data json.RawMessage) bool {
	var o struct {
		Email *string `json:"email"`
	}
	return json.Unmarshal(data, &o) == nil && o.Email != nil && *o.Email != ""
}

// Streams returns the OpenAI streams Ogma polls, in the catalogue's order,
// with their cadences: reports every usageEvery, the audit log and the
// directory every directoryEvery.
func Streams(c *Client, usageEvery, directoryEvery time.Duration) []poll.Scheduled {
	var out []poll.Scheduled
	for _, s := range stream.Of(stream.OpenAI) {
		var st poll.Stream
		every := directoryEvery
		switch s.Kind {
		case stream.UsageReport:
			st, every = &Usage{Client: c, Spec: s}, usageEvery
		case stream.CostReport:
			// Cost settles late (grace 48 h): the trailing window re-reads 3 days.
			st, every = &Usage{Client: c, Spec: s, Limit: 180}, usageEvery
		case stream.AuditLog:
			st = &Audit{Client: c, Spec: s}
		case stream.Directory:
			st = directory(c, s)
		}
		out = append(out, poll.Scheduled{Stream: st, Every: every})
	}
	return out
}

// directory returns the walker of a directory stream: the organization's
// lists, and the lists under each project.
func directory(c *Client, s stream.Spec) poll.Stream {
	switch s.Object {
	case "user":
		return &List{Client: c, Spec: s, Path: "/v1/organization/users"}
	case "project":
		return &List{Client: c, Spec: s, Path: "/v1/organization/projects", Query: url.Values{"include_archived": {"true"}}}
	case "admin_api_key":
		return &List{Client: c, Spec: s, Path: "/v1/organization/admin_api_keys"}
	case "project_user":
		return &ProjectList{Client: c, Spec: s, Sub: "users"}
	case "service_account":
		return &ProjectList{Client: c, Spec: s, Sub: "service_accounts"}
	case "project_api_key":
		// owner_project_access=any: keys whose owner lost access still show.
		return &ProjectList{Client: c, Spec: s, Sub: "api_keys", Query: url.Values{"owner_project_access": {"any"}}}
	}
	panic("openai: no list of directory object " + s.Object) // the catalogue and this switch disagree
}
