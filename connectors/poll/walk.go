package poll

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"

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
