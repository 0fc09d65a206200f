package openai

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

// List is a directory stream: a complete walk of one entity list per poll
// (users, projects), bracketed as one snapshot so that an object missing
// from a complete walk can be told from one not yet read. A walk cut short
// resumes after the last committed object of the same snapshot.
type List struct {
	Client *Client
	// Stream is the stream name, e.g. "users".
	Stream string
	// Path is the list path, e.g. "/v1/organization/users".
	Path string
	// Query holds extra parameters sent on every page.
	Query url.Values
	// Limit is the objects per page. Default 100, the vendor's maximum.
	Limit int
}

// Name returns the stream name.
func (l *List) Name() string { return l.Stream }

type listPage struct {
	Data    []json.RawMessage `json:"data"`
	LastID  *string           `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// Poll walks the list; see [List].
func (l *List) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	w := l.Client.walker(l.Name(), req, emit)
	after := w.Begin()
	err := l.Client.walk(ctx, req, l.Path, l.Query, l.Limit, after, func(items []json.RawMessage, last string, more bool, r envelope.Request) error {
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
	// Stream is the stream name, e.g. "project_api_keys".
	Stream string
	// Sub is the list under each project: "api_keys", "users",
	// "service_accounts".
	Sub string
	// Query holds extra parameters for every page.
	Query url.Values
	Limit int
}

// Name returns the stream name.
func (p *ProjectList) Name() string { return p.Stream }

// Poll walks the list of every project in list order.
func (p *ProjectList) Poll(ctx context.Context, req poll.Request, emit func(poll.Page) error) error {
	var projects []string
	err := p.Client.walk(ctx, req, "/v1/organization/projects", url.Values{"include_archived": {"true"}}, p.Limit, "",
		func(items []json.RawMessage, _ string, _ bool, _ envelope.Request) error {
			for _, it := range items {
				projects = append(projects, objectID(it))
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("poll %s: list projects: %w", p.Name(), err)
	}
	w := p.Client.walker(p.Name(), req, emit)
	resumeProject, resumeKey, _ := strings.Cut(w.Begin(), "/")
	skipping := resumeProject != ""
	for i, pid := range projects {
		after := ""
		if skipping {
			if pid != resumeProject {
				continue
			}
			skipping, after = false, resumeKey
		}
		lastProject := i == len(projects)-1
		err := p.Client.walk(ctx, req, "/v1/organization/projects/"+url.PathEscape(pid)+"/"+p.Sub, p.Query, p.Limit, after,
			func(items []json.RawMessage, last string, more bool, r envelope.Request) error {
				pos := pid + "/" + last
				if !more && !lastProject {
					pos = projects[i+1] + "/"
				}
				return w.Page(items, pos, r, !more && lastProject)
			})
		if err != nil {
			return fmt.Errorf("poll %s: project %s: %w", p.Name(), pid, err)
		}
	}
	if len(projects) == 0 || skipping {
		// Nothing to walk, or the project to resume in is gone: close the
		// snapshot with what it holds.
		return w.Page(nil, "", envelope.Request{Path: "/v1/organization/projects"}, true)
	}
	return nil
}

// walk pages through a list from after, calling fn per page.
func (c *Client) walk(ctx context.Context, req poll.Request, path string, extra url.Values, limit int, after string,
	fn func(items []json.RawMessage, last string, more bool, r envelope.Request) error) error {
	if limit == 0 {
		limit = 100
	}
	for {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		for k, v := range extra {
			q[k] = v
		}
		if after != "" {
			q.Set("after", after)
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

// walker returns the walker of a directory stream, noting a user with an
// email as the project_users capability.
func (c *Client) walker(name string, req poll.Request, emit func(poll.Page) error) *poll.Walker {
	w := &poll.Walker{Spec: stream.Must(stream.OpenAI, name), Req: req, Emit: emit}
	if name == "users" {
		w.Observe = func(item json.RawMessage, o *control.Observed) { o.ProjectUsers = o.ProjectUsers || hasEmail(item) }
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

func hasEmail(data json.RawMessage) bool {
	var o struct {
		Email *string `json:"email"`
	}
	return json.Unmarshal(data, &o) == nil && o.Email != nil && *o.Email != ""
}

// Streams returns the OpenAI streams Ogma polls, with their cadences:
// usage every usageEvery, the directory every directoryEvery.
func Streams(c *Client, usageEvery, directoryEvery time.Duration) []poll.Scheduled {
	streams := []poll.Scheduled{
		usage(c, "completions", usageEvery),
		// Cost settles late (grace 48 h): the trailing window re-reads 3 days.
		{Stream: &Usage{Client: c, Costs: true, GroupBy: stream.Must(stream.OpenAI, "costs").GroupSet, Limit: 180}, Every: usageEvery},
		{Stream: &Audit{Client: c}, Every: directoryEvery},
		{Stream: &List{Client: c, Stream: "users", Path: "/v1/organization/users"}, Every: directoryEvery},
		{Stream: &List{Client: c, Stream: "projects", Path: "/v1/organization/projects", Query: url.Values{"include_archived": {"true"}}}, Every: directoryEvery},
		{Stream: &ProjectList{Client: c, Stream: "project_users", Sub: "users"}, Every: directoryEvery},
		{Stream: &ProjectList{Client: c, Stream: "project_service_accounts", Sub: "service_accounts"}, Every: directoryEvery},
		// owner_project_access=any: keys whose owner lost access still show.
		{Stream: &ProjectList{Client: c, Stream: "project_api_keys", Sub: "api_keys", Query: url.Values{"owner_project_access": {"any"}}}, Every: directoryEvery},
		{Stream: &List{Client: c, Stream: "admin_api_keys", Path: "/v1/organization/admin_api_keys"}, Every: directoryEvery},
	}
	// The other usage endpoints, after the main one.
	for _, s := range stream.OfKind(stream.OpenAI, stream.UsageReport)[1:] {
		streams = append(streams, usage(c, s.Endpoint, usageEvery))
	}
	return streams
}

// usage returns the poller of a usage endpoint, grouped by its primary
// group set.
func usage(c *Client, endpoint string, every time.Duration) poll.Scheduled {
	return poll.Scheduled{Stream: &Usage{Client: c, Endpoint: endpoint,
		GroupBy: stream.Must(stream.OpenAI, "usage."+endpoint).GroupSet}, Every: every}
}
