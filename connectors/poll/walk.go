package poll

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Walker turns the pages of a directory walk into snapshot-bracketed raw
// records and cursors, the same for every vendor: a complete walk is one
// snapshot between a begin and an end marker, so that an object missing
// from it can be told from one not yet read, and a walk cut short resumes
// after the last committed object of the same snapshot.
type Walker struct {
	Spec stream.Spec
	Req  Request
	Emit func(Page) error
	// Observe, when set, is shown every object published, to note what it
	// proves of the key's capabilities.
	Observe func(item json.RawMessage, o *control.Observed)

	cur   stream.Cursor
	begun bool // the begin marker is still to be published
}

// Begin starts the walk: where the cursor's snapshot stopped, or a new
// snapshot. It returns the position to resume after ("" from the start).
func (w *Walker) Begin() string {
	w.cur = w.Req.Cursor
	if w.cur.Snapshot == "" {
		b := make([]byte, 8)
		rand.Read(b) // never fails (crypto/rand)
		w.cur.Snapshot, w.cur.AfterID, w.cur.Count, w.cur.State = hex.EncodeToString(b), "", 0, "walking"
		w.begun = true
	}
	return w.cur.AfterID
}

// Page publishes one page of the walk: its objects (after the begin marker
// when the walk starts here), pos as the position to resume after, and the
// end marker when done.
func (w *Walker) Page(items []json.RawMessage, pos string, r envelope.Request, done bool) error {
	fetched := w.Req.Now().UTC()
	rec := func(marker string, data json.RawMessage, count int) *envelope.Raw {
		return &envelope.Raw{V: envelope.Version, Tenant: w.Req.Tenant, Vendor: w.Spec.Vendor, Stream: w.Spec.Name,
			Request: r, FetchedAt: fetched, Salt: envelope.NewSalt(),
			Snapshot: &envelope.Snapshot{ID: w.cur.Snapshot, Marker: marker, Count: count}, Data: data}
	}
	var out Page
	if w.begun {
		out.Records = append(out.Records, rec(envelope.Begin, nil, 0))
		w.begun = false
	}
	for _, it := range items {
		out.Records = append(out.Records, rec(envelope.Item, it, 0))
		if w.Observe != nil {
			w.Observe(it, &out.Observed)
		}
	}
	next := w.cur
	next.Count += len(items)
	next.AfterID = pos
	if done {
		out.Records = append(out.Records, rec(envelope.End, nil, next.Count))
		next.Snapshot, next.AfterID, next.Count, next.State = "", "", 0, "idle"
		next.WindowEnd = fetched
	}
	out.Cursor = next
	if err := w.Emit(out); err != nil {
		return err
	}
	w.cur = next
	return nil
}

// Lists pages through a vendor's entity lists, whose pages are, for every
// vendor Ogma reads, {"data": [...], "has_more": bool, "last_id": "..."}
// and continue after the last id.
type Lists struct {
	// Get sends GET path?q with the request's key and returns the body.
	Get func(ctx context.Context, path string, q url.Values) ([]byte, error)
	// AfterParam names the parameter to continue after an id: "after"
	// (OpenAI) or "after_id" (Anthropic).
	AfterParam string
	// Limit is the objects per page when a walk gives none: the vendor's
	// maximum.
	Limit int
}

// Walk pages through the list at path from after, calling fn per page with
// its objects, the id to continue after, whether more follow, and the
// request that fetched it.
func (l Lists) Walk(ctx context.Context, path string, extra url.Values, limit int, after string,
	fn func(items []json.RawMessage, last string, more bool, r envelope.Request) error) error {
	if limit == 0 {
		limit = l.Limit
	}
	for {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		for k, v := range extra {
			q[k] = v
		}
		if after != "" {
			q.Set(l.AfterParam, after)
		}
		body, err := l.Get(ctx, path, q)
		if err != nil {
			return err
		}
		var p struct {
			Data    []json.RawMessage `json:"data"`
			HasMore bool              `json:"has_more"`
			LastID  *string           `json:"last_id"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		last := after
		if p.LastID != nil {
			last = *p.LastID
		}
		more := p.HasMore && last != after // a vendor that does not move on ends the walk
		if err := fn(p.Data, last, more, envelope.Request{Path: path, Query: q.Encode()}); err != nil {
			return err
		}
		if !more {
			return nil
		}
		after = last
	}
}

// IDs returns the ids of every object of the list at path.
func (l Lists) IDs(ctx context.Context, path string, extra url.Values, limit int) ([]string, error) {
	var ids []string
	err := l.Walk(ctx, path, extra, limit, "", func(items []json.RawMessage, _ string, _ bool, _ envelope.Request) error {
		for _, it := range items {
			var o struct {
				ID string `json:"id"`
			}
			json.Unmarshal(it, &o) // a missing id reads as ""
			ids = append(ids, o.ID)
		}
		return nil
	})
	return ids, err
}

// WalkEach walks, as w's one snapshot, the list under each parent (a
// project, a workspace) in turn — childPath(parent) — resuming where w's
// cursor stopped: "<parent>/<last id>". A parent that is gone ends the
// walk with what it holds.
func (l Lists) WalkEach(ctx context.Context, w *Walker, parents []string, parentsPath string, childPath func(parent string) string,
	extra url.Values, limit int) error {
	resumeIn, resumeAfter, _ := strings.Cut(w.Begin(), "/")
	skipping := resumeIn != ""
	for i, parent := range parents {
		after := ""
		if skipping {
			if parent != resumeIn {
				continue
			}
			skipping, after = false, resumeAfter
		}
		lastParent := i == len(parents)-1
		err := l.Walk(ctx, childPath(parent), extra, limit, after, func(items []json.RawMessage, last string, more bool, r envelope.Request) error {
			pos := parent + "/" + last
			if !more && !lastParent {
				pos = parents[i+1] + "/"
			}
			return w.Page(items, pos, r, !more && lastParent)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", parent, err)
		}
	}
	if len(parents) == 0 || skipping {
		// Nothing to walk, or the parent to resume in is gone: close the
		// snapshot with what it holds.
		return w.Page(nil, "", envelope.Request{Path: parentsPath}, true)
	}
	return nil
}
